// How Python prints the values a template computes: str() (what `{{ x }}`
// writes), repr() (inside lists and dicts) and json.dumps as transformers'
// `tojson` filter calls it (ensure_ascii=False, key order as given).
#pragma once

#include <optional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace baton::jinja {

// Python's repr(float): the shortest text that reads back ("0.1", "1e+16",
// "1.0", "inf", "nan").
std::string format_float(double d);

// str(v) appended to out. Undefined prints as nothing.
void append_python_str(std::string& out, const Value& v);
// repr(v) appended to out ('text' with Python's quoting).
void append_python_repr(std::string& out, const Value& v);

// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys):
// separators ", " and ": " without indent, "," and ": " with it. False when
// v holds something JSON cannot (undefined, a callable): `what` names it.
bool append_python_json(std::string& out, const Value& v, std::optional<int> indent, bool sort_keys, std::string& what);

std::string python_str(const Value& v);

}  // namespace baton::jinja
