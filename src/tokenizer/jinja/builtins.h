// What templates call: filters (`x | trim`), tests (`x is string`), methods
// of strings, dicts and the loop object (`s.startswith('a')`), operators,
// item and attribute access, and the global functions (range, namespace,
// raise_exception, strftime_now, ...). Each throws TemplateError (through
// Interpreter::fail) on a bad call, as jinja2 raises.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/jinja/interpreter.h"

namespace baton::jinja {

Value call_filter(Interpreter& in, const std::string& name, const Value& v, const Args& args);
bool call_test(Interpreter& in, const std::string& name, const Value& v, const Args& args);
Value call_method(Interpreter& in, const Value& obj, const std::string& name, const Args& args);

// obj.name: a dict's item or a loop attribute; undefined when absent.
Value get_attribute(Interpreter& in, const Value& obj, const std::string& name);
// obj[key]: list and string indices (negative from the end), dict keys.
Value get_item(Interpreter& in, const Value& obj, const Value& key);
// obj[start:stop:step] on a list or string (Python's rules).
Value slice_value(Interpreter& in, const Value& obj, const Value& start, const Value& stop, const Value& step);

// Arithmetic, comparison, `in` and `~`.
Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b);
// Python's < on numbers, strings and lists.
bool less_than(Interpreter& in, const Value& a, const Value& b);

// The global function of that name (range, namespace, dict, raise_exception,
// strftime_now), or null.
const Value* find_global_function(std::string_view name);

// Iterating a value in a for loop or a filter: a list, a dict's keys, a
// string's characters; undefined and none iterate as empty only where jinja2
// allows (undefined does; none fails).
std::shared_ptr<const List> iterate(Interpreter& in, const Value& v);

// Python's str.strip(chars) family on UTF-8 (no chars: Unicode whitespace).
std::string python_strip(std::string_view s, const Value& chars, bool left, bool right);

}  // namespace baton::jinja
