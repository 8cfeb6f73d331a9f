// The Jinja engine against jinja2 (jinja_cases.json, made by
// make_jinja_cases.py with jinja2 set up as transformers sets it up), and its
// limits against hostile templates.
#include <gtest/gtest.h>

#include <string>

#include "common/json.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/python_format.h"
#include "tokenizer/jinja/template.h"

namespace baton::jinja {
namespace {

const OrderedJson& jinja_cases() {
  static const OrderedJson cases = [] {
    auto text = read_file(std::string(BATON_TEST_DATA) + "/fixtures/chat_templates/jinja_cases.json");
    EXPECT_TRUE(text.is_ok()) << text.status().to_string();
    auto j = parse_ordered_json(text.is_ok() ? *text : "{}");
    EXPECT_TRUE(j.is_ok());
    return j.is_ok() ? *j : OrderedJson::object();
  }();
  return cases;
}

Result<std::string> render(std::string_view source, const OrderedJson& variables = OrderedJson::object(),
                           const RenderLimits& limits = {}) {
  BATON_ASSIGN_OR_RETURN(Template t, Template::parse(source));
  std::vector<std::pair<std::string_view, Value>> globals;
  for (auto it = variables.begin(); it != variables.end(); ++it) globals.emplace_back(it.key(), from_json(it.value()));
  return t.render(globals, limits);
}

TEST(JinjaTest, MatchesJinja2OnEveryCase) {
  const OrderedJson& cases = jinja_cases()["cases"];
  ASSERT_GE(cases.size(), 70u);
  int num_errors = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"].get<std::string>();
    auto out = render(c["template"].get<std::string>(), c["variables"]);
    if (c.contains("rendered")) {
      ASSERT_TRUE(out.is_ok()) << name << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["rendered"].get<std::string>()) << name;
    } else {
      ++num_errors;
      ASSERT_FALSE(out.is_ok()) << name << " rendered '" << *out << "' where jinja2 fails with "
                                << c["error"].get<std::string>();
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << name;
      if (name.rfind("err_raise", 0) == 0) {  // the template's own message, exactly
        EXPECT_EQ(out.status().message(), c["error"].get<std::string>()) << name;
      }
    }
  }
  EXPECT_GE(num_errors, 10);
}

TEST(JinjaTest, ErrorsNameTheLine) {
  auto syntax = render("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  ASSERT_FALSE(syntax.is_ok());
  EXPECT_NE(syntax.status().message().find("syntax error (line 3)"), std::string::npos) << syntax.status().message();
  auto runtime = render("a\nb\n{{ missing.attr }}");
  ASSERT_FALSE(runtime.is_ok());
  EXPECT_NE(runtime.status().message().find("line 3"), std::string::npos) << runtime.status().message();
  EXPECT_NE(runtime.status().message().find("'missing' is undefined"), std::string::npos);
}

TEST(JinjaTest, PythonFloatFormatting) {
  EXPECT_EQ(format_float(1.0), "1.0");
  EXPECT_EQ(format_float(0.1), "0.1");
  EXPECT_EQ(format_float(-2.5), "-2.5");
  EXPECT_EQ(format_float(1e16), "1e+16");
  EXPECT_EQ(format_float(123456789012345.6), "123456789012345.6");
  EXPECT_EQ(format_float(1.5e-7), "1.5e-07");
  EXPECT_EQ(format_float(0.0001), "0.0001");
  EXPECT_EQ(format_float(1.0 / 3), "0.3333333333333333");
}

// Hostile templates end in an error, never a crash or an endless render.
TEST(JinjaLimitsTest, StepLimitStopsHugeLoops) {
  RenderLimits limits;
  limits.max_steps = 100'000;
  auto nested = render("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", {}, limits);
  ASSERT_FALSE(nested.is_ok());
  EXPECT_NE(nested.status().message().find("step limit"), std::string::npos) << nested.status().message();
  auto huge_range = render("{% for i in range(10000000000) %}{% endfor %}");
  ASSERT_FALSE(huge_range.is_ok());
  EXPECT_NE(huge_range.status().message().find("list past its limit"), std::string::npos);
  // Within the limit the same loop completes.
  EXPECT_TRUE(
      render("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok", {}, limits).is_ok());
}

TEST(JinjaLimitsTest, OutputAndStringSizeLimits) {
  RenderLimits limits;
  limits.max_output_bytes = 10'000;
  auto output = render("{% for i in range(100) %}{{ 'x' * 200 }}{% endfor %}", {}, limits);
  ASSERT_FALSE(output.is_ok());
  EXPECT_NE(output.status().message().find("output limit"), std::string::npos) << output.status().message();
  EXPECT_FALSE(render("{{ 'x' * 1000000000000 }}").is_ok());
  EXPECT_FALSE(render("{{ ['x'] * 1000000000000 }}").is_ok());
  auto doubling = render(
      "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}");
  ASSERT_FALSE(doubling.is_ok());
  EXPECT_NE(doubling.status().message().find("output limit"), std::string::npos) << doubling.status().message();
  // Copies are shared, and what a render builds in total is bounded (10 MB
  // concatenated a thousand times would be 10 GB).
  auto rebuilt = render(
      "{% set s = 'x' * 10000000 %}{% set l = [s] * 100000 %}{% for i in range(1000) %}{% set t = s ~ i %}{% endfor %}"
      "{{ l | length }}");
  ASSERT_FALSE(rebuilt.is_ok());
  EXPECT_NE(rebuilt.status().message().find("more text than its limit"), std::string::npos)
      << rebuilt.status().message();
  EXPECT_FALSE(render("{% set s = 'x' * 10000000 %}{{ ([s] * 100000) | join }}").is_ok());
  auto list_doubling = render(
      "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
  EXPECT_FALSE(list_doubling.is_ok());
}

TEST(JinjaLimitsTest, RecursionAndNestingLimits) {
  auto recursion = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  ASSERT_FALSE(recursion.is_ok());
  EXPECT_NE(recursion.status().message().find("nest deeper"), std::string::npos) << recursion.status().message();
  auto parens = render("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}");
  ASSERT_FALSE(parens.is_ok());
  EXPECT_NE(parens.status().message().find("nests deeper"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 20000; ++i) blocks += "{% if true %}";
  auto deep_blocks = render(blocks);
  ASSERT_FALSE(deep_blocks.is_ok());
  EXPECT_NE(deep_blocks.status().message().find("nests deeper"), std::string::npos);
  std::string lists = "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}";
  EXPECT_FALSE(render(lists).is_ok());
  auto deep_list = render(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}");
  ASSERT_FALSE(deep_list.is_ok());
  EXPECT_NE(deep_list.status().message().find("nests too deeply"), std::string::npos) << deep_list.status().message();
}

TEST(JinjaLimitsTest, NoCyclesThroughNamespaces) {
  EXPECT_FALSE(render("{% set ns = namespace() %}{% set ns.me = [ns] %}{{ ns }}").is_ok());
  EXPECT_FALSE(render("{% set ns = namespace() %}{% set ns.me = {'a': ns} %}").is_ok());
  EXPECT_FALSE(render("{% set ns = namespace() %}{% for x in [1] %}{% set ns.l = loop %}{% endfor %}").is_ok());
  // caller() kept past its call block is refused, not a dangling scope.
  auto escaped = render(
      "{% set ns = namespace() %}{% macro keep() %}{% set ns.c = caller %}{% endmacro %}"
      "{% call keep() %}x{% endcall %}{{ ns.c() }}");
  EXPECT_FALSE(escaped.is_ok());
}

TEST(JinjaLimitsTest, MalformedTemplatesAreErrors) {
  for (const char* bad : {"{{", "{%", "{#", "{% for %}", "{% for x in %}{% endfor %}", "{{ 'unterminated }}",
                          "{% set %}", "{% macro %}", "{% endfor %}", "{{ a[1:2:3:4] }}", "{{ x | }}", "{{ x is }}",
                          "{% if %}{% endif %}", "{{ $ }}", "{% call x %}{% endcall %}", "{% raw %}"}) {
    auto out = render(bad);
    EXPECT_FALSE(out.is_ok()) << bad;
  }
}

}  // namespace
}  // namespace baton::jinja
