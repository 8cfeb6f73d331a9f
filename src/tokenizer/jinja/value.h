// The values a Jinja template computes with, as jinja2 sees Python's: undefined,
// none, booleans, integers, floats, strings, lists, dicts (insertion-ordered),
// namespaces, loop objects and callables (macros, builtins). Lists and dicts
// are shared (copying a Value copies a pointer); templates cannot mutate them
// (jinja2's ImmutableSandboxedEnvironment), except a namespace's attributes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace baton::jinja {

class Value;
struct Callable;
struct LoopState;

using List = std::vector<Value>;
using OrderedJson = nlohmann::ordered_json;

// How deeply a template may nest the lists and dicts it builds.
inline constexpr int kMaxValueDepth = 128;

// An insertion-ordered mapping (Python's dict). Small: looked up linearly.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // namespace(): `set ns.x = ...` may assign
  int depth = 1;              // 1 + the deepest value held

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kLoop, kCallable };

  Value() = default;  // undefined
  static Value none() { return Value(Kind::kNone, std::monostate{}); }
  static Value boolean(bool b) { return Value(Kind::kBool, b); }
  static Value integer(int64_t i) { return Value(Kind::kInt, i); }
  static Value number(double d) { return Value(Kind::kFloat, d); }
  // Strings are shared too: copying a Value never copies text.
  static Value string(std::string s) { return Value(Kind::kString, std::make_shared<const std::string>(std::move(s))); }
  // Containers record how deeply they nest (see depth()).
  static Value list(List items);
  static Value dict(std::shared_ptr<Dict> d);
  static Value loop(std::shared_ptr<const LoopState> s) { return Value(Kind::kLoop, std::move(s)); }
  static Value callable(std::shared_ptr<const Callable> c) { return Value(Kind::kCallable, std::move(c)); }
  // An undefined value that remembers what was looked up, for error messages.
  static Value undefined(std::string name) {
    return Value(Kind::kUndefined, std::make_shared<const std::string>(std::move(name)));
  }

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return kind_ == Kind::kBool ? int64_t(as_bool()) : std::get<int64_t>(data_); }
  double as_float() const { return kind_ == Kind::kFloat ? std::get<double>(data_) : double(as_int()); }
  const std::string& as_string() const { return *std::get<std::shared_ptr<const std::string>>(data_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(data_); }
  const std::shared_ptr<const List>& list_ptr() const { return std::get<std::shared_ptr<const List>>(data_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  Dict& mutable_dict() const { return *std::get<std::shared_ptr<Dict>>(data_); }
  const LoopState& as_loop() const { return *std::get<std::shared_ptr<const LoopState>>(data_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(data_); }
  // What an undefined value was called (empty when unknown).
  std::string undefined_name() const;

  // Nesting of lists and dicts: 0 for a scalar, 1 + the deepest element for
  // a container (a namespace's as of its last assignment). Bounds recursion
  // in printing, comparing and freeing.
  int depth() const { return depth_; }

  // Python truthiness.
  bool truthy() const;
  // Python's type name, for error messages ("str", "dict", "NoneType", ...).
  const char* type_name() const;

 private:
  using Data = std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<const std::string>,
                            std::shared_ptr<const List>, std::shared_ptr<Dict>, std::shared_ptr<const LoopState>,
                            std::shared_ptr<const Callable>>;
  Value(Kind kind, Data data) : kind_(kind), data_(std::move(data)) {}

  Kind kind_ = Kind::kUndefined;
  uint16_t depth_ = 0;
  Data data_;
};

// A running for loop, seen by the template as `loop`.
struct LoopState {
  std::shared_ptr<const List> items;  // what is iterated
  size_t index0 = 0;
  size_t depth0 = 0;  // recursive loops only (not supported): always 0
};

// Python equality (1 == 1.0 == True; lists and dicts element-wise).
bool values_equal(const Value& a, const Value& b);

// JSON (key order kept) <-> Value.
Value from_json(const OrderedJson& j);
OrderedJson to_json(const Value& v);

}  // namespace baton::jinja
