#include "tokenizer/jinja/value.h"

#include <algorithm>

namespace baton::jinja {

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::set(std::string key, Value value) {
  depth = std::max(depth, value.depth() + 1);
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value Value::list(List items) {
  int depth = 0;
  for (const Value& v : items) depth = std::max(depth, v.depth());
  Value out(Kind::kList, std::make_shared<const List>(std::move(items)));
  out.depth_ = static_cast<uint16_t>(std::min(depth + 1, 0xFFFF));
  return out;
}

Value Value::dict(std::shared_ptr<Dict> d) {
  int depth = 0;
  for (const auto& kv : d->items) depth = std::max(depth, kv.second.depth());
  d->depth = std::max(d->depth, depth + 1);
  Value out(Kind::kDict, std::move(d));
  out.depth_ = static_cast<uint16_t>(std::min(out.as_dict().depth, 0xFFFF));
  return out;
}

std::string Value::undefined_name() const {
  using Text = std::shared_ptr<const std::string>;
  if (kind_ == Kind::kUndefined && std::holds_alternative<Text>(data_)) return *std::get<Text>(data_);
  return {};
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return as_bool();
    case Kind::kInt: return as_int() != 0;
    case Kind::kFloat: return as_float() != 0.0;
    case Kind::kString: return !as_string().empty();
    case Kind::kList: return !as_list().empty();
    case Kind::kDict: return !as_dict().items.empty() || as_dict().is_namespace;
    case Kind::kLoop:
    case Kind::kCallable: return true;
  }
  return false;
}

const char* Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kDict: return as_dict().is_namespace ? "Namespace" : "dict";
    case Kind::kLoop: return "LoopContext";
    case Kind::kCallable: return "function";
  }
  return "?";
}

bool values_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kUndefined:
    case K::kNone: return true;
    case K::kString: return a.as_string() == b.as_string();
    case K::kList: {
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!values_equal(x[i], y[i])) return false;
      }
      return true;
    }
    case K::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (&x == &y) return true;
      if (x.is_namespace || y.is_namespace || x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* other = y.find(k);
        if (other == nullptr || !values_equal(v, *other)) return false;
      }
      return true;
    }
    case K::kLoop: return &a.as_loop() == &b.as_loop();
    case K::kCallable: return &a.as_callable() == &b.as_callable();
    default: return false;
  }
}

Value from_json(const OrderedJson& j) {
  switch (j.type()) {
    case OrderedJson::value_t::null: return Value::none();
    case OrderedJson::value_t::boolean: return Value::boolean(j.get<bool>());
    case OrderedJson::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case OrderedJson::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case OrderedJson::value_t::number_float: return Value::number(j.get<double>());
    case OrderedJson::value_t::string: return Value::string(j.get<std::string>());
    case OrderedJson::value_t::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e));
      return Value::list(std::move(items));
    }
    case OrderedJson::value_t::object: {
      auto d = std::make_shared<Dict>();
      d->items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d->items.emplace_back(it.key(), from_json(it.value()));
      return Value::dict(std::move(d));
    }
    default: return Value::none();
  }
}

OrderedJson to_json(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kBool: return v.as_bool();
    case K::kInt: return v.as_int();
    case K::kFloat: return v.as_float();
    case K::kString: return v.as_string();
    case K::kList: {
      OrderedJson a = OrderedJson::array();
      for (const Value& e : v.as_list()) a.push_back(to_json(e));
      return a;
    }
    case K::kDict: {
      OrderedJson o = OrderedJson::object();
      for (const auto& [k, e] : v.as_dict().items) o[k] = to_json(e);
      return o;
    }
    default: return nullptr;
  }
}

}  // namespace baton::jinja
