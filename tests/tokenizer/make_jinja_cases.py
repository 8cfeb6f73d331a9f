#!/usr/bin/env python3
"""Writes tests/data/fixtures/chat_templates/jinja_cases.json: templates rendered by
jinja2 set up as transformers sets it up for chat templates (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, its tojson and raise_exception). The C++ engine
must give the same text, or fail where jinja2 fails. Run from the repository root:
    python3 tests/tokenizer/make_jinja_cases.py
"""
import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} block (AssistantTracker), rendering its body as is."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[jinja2.ext.loopcontrols, Generation])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

MSGS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What's 2+2?"},
]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                           "days": {"type": "integer"}}, "required": ["city"]}}}]

CASES = [
    # whitespace control
    ("ws_trim_lstrip", "A\n  {% if true %}\n    B\n  {% endif %}\nC\n", {}),
    ("ws_minus", "A  {%- if true -%}  B  {%- endif -%}  C", {}),
    ("ws_plus", "A\n  {%+ if true %}B{% endif +%}\nC", {}),
    ("ws_expr_not_lstripped", "A\n  {{ 'x' }}\n  B", {}),
    ("ws_comment", "A\n  {# note #}\nB {#- c -#} C", {}),
    ("ws_trailing_newline", "line\n", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
    ("ws_minus_expr", "a   {{- 'b' -}}   c", {}),
    ("raw", "{% raw %}{{ not rendered }}{% endraw %}!", {}),
    # loops
    ("loop_vars", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}"
     "/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}", {"xs": ["a", "b", "c"]}),
    ("loop_prev_next", "{% for x in xs %}[{{ loop.previtem }}|{{ x }}|{{ loop.nextitem }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_else", "{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", {"xs": []}),
    ("loop_filter", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_break_continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}"
     "{% endif %}{{ x }}{% endfor %}", {"xs": [1, 2, 3, 4, 5]}),
    ("loop_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("loop_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "y": 2}}),
    ("loop_nested", "{% for a in xs %}{% for b in xs %}{{ loop.depth }}{{ a }}{{ b }} {% endfor %}{% endfor %}", {"xs": [1, 2]}),
    ("loop_cycle", "{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_reverse_slice", "{% for m in messages[::-1] %}{{ m.role }} {% endfor %}", {"messages": MSGS}),
    ("loop_scope", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("loop_string", "{% for c in 'héllo' %}{{ c }}.{% endfor %}", {}),
    # set, namespace, blocks
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}"
     "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}", {"messages": MSGS}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}),
    ("set_block", "{% set x %}  inner {{ 1 + 1 }} {% endset %}[{{ x }}]", {}),
    ("set_block_filter", "{% set x | upper %}abc{% endset %}{{ x }}", {}),
    ("filter_block", "{% filter upper %}hello {{ name }}{% endfilter %}", {"name": "bob"}),
    ("macro", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }}"
     " {{ greet(name='C') }}", {}),
    ("macro_recursion", "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}", {}),
    ("macro_sees_globals", "{% macro show() %}{{ bos_token }}{% endmacro %}{{ show() }}", {"bos_token": "<s>"}),
    ("call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
     "{% call wrap('b') %}bold {{ 1 }}{% endcall %}", {}),
    ("call_block_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
     "{% call(v) each([1, 2]) %}[{{ v }}]{% endcall %}", {}),
    ("generation", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
     "{% endgeneration %}{% endif %}{% endfor %}", {"messages": MSGS}),
    # expressions
    ("arith", "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 + 1 }}"
     " {{ 10 / 5 }} {{ -(3) }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ true ~ [1, 'x'] ~ {'k': 'v'} }}", {}),
    ("compare", "{{ 1 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ 1 == 1.0 }} {{ 'x' != 'y' }} {{ 3 >= 3 }}", {}),
    ("in_ops", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}", {}),
    ("logic", "{{ 0 or 'default' }} {{ 1 and 'yes' }} {{ not [] }} {{ none or '' }}|", {}),
    ("ternary", "{{ 'yes' if x else 'no' }} {{ 'a' if not x }}|{{ ('p' if y else 'q') ~ '!' }}", {"x": False, "y": True}),
    ("literals", "{{ [1, 2.5, 'three', none, true] }} {{ {'a': 1, 'b': [2]} }} {{ 1e3 }} {{ 0.1 + 0.2 }}", {}),
    ("print_values", "{{ none }}|{{ true }}|{{ 1.0 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 123456789012345678 }}|{{ 'it''s' }}"
     "|{{ [\"it's\"] }}|{{ ['a\\nb'] }}", {}),
    ("undefined_print", "[{{ nothing }}][{{ d.missing }}][{{ nothing is defined }}][{{ d.missing is undefined }}]", {"d": {}}),
    ("subscript", "{{ xs[0] }} {{ xs[-1] }} {{ d['k'] }} {{ d.k }} {{ s[1:3] }} {{ xs[1:] }} {{ xs[:-1] }} {{ s[::-1] }}"
     " {{ xs[::2] }} {{ 'héllo'[1] }} {{ 'héllo'[1:3] }}", {"xs": [1, 2, 3], "d": {"k": "v"}, "s": "abcdef"}),
    ("attr_index", "{{ xs.0 }} {{ m['role'] }}", {"xs": ["first"], "m": {"role": "user"}}),
    # tests
    ("tests", "{{ x is defined }} {{ y is defined }} {{ n is none }} {{ s is string }} {{ i is number }} {{ i is integer }}"
     " {{ f is float }} {{ d is mapping }} {{ l is iterable }} {{ s is iterable }} {{ b is boolean }} {{ b is true }}"
     " {{ b is false }} {{ i is even }} {{ i is odd }} {{ i is divisibleby 3 }} {{ s is lower }} {{ i is eq 3 }}"
     " {{ 5 is gt 3 }} {{ l is sequence }} {{ 'a' is in 'abc' }} {{ n is not none }} {{ x is sameas none }}",
     {"x": None, "n": None, "s": "abc", "i": 3, "f": 1.5, "d": {}, "l": [1], "b": True}),
    # filters
    ("f_tojson", "{{ tools | tojson }}\n{{ tools[0].function.parameters | tojson(indent=2) }}\n{{ {'b': 1, 'a': [1.5, none, true, 'é\"\\n']} | tojson }}"
     "\n{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}\n{{ [] | tojson }} {{ {} | tojson(indent=4) }} {{ 'x' | tojson }}",
     {"tools": TOOLS}),
    ("f_strings", "{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'Hello' | upper }}|{{ 'Hello' | lower }}"
     "|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}|{{ 'a-b-c' | replace('-', '+') }}"
     "|{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'ab' | replace('', '.') }}|{{ 'one two  three' | wordcount }}", {}),
    ("f_length", "{{ 'héllo' | length }} {{ [1, 2] | length }} {{ {'a': 1} | count }} {{ messages | length }}", {"messages": MSGS}),
    ("f_list_ops", "{{ xs | first }} {{ xs | last }} {{ xs | join(', ') }} {{ xs | reverse | list }} {{ xs | sort }}"
     " {{ ['b', 'A', 'c'] | sort }} {{ xs | sort(reverse=true) }} {{ xs | sum }} {{ xs | min }} {{ xs | max }}"
     " {{ [1, 1, 2] | unique | list }} {{ 'abc' | list }}", {"xs": [3, 1, 2]}),
    ("f_select", "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }}"
     " {{ messages | rejectattr('role', 'eq', 'user') | list | length }} {{ [0, 1, 2, 3] | select('odd') | list }}"
     " {{ [0, 1, '', 'a'] | select | list }} {{ [1, 2, 3] | reject('even') | list }}"
     " {{ messages | selectattr('tool_calls', 'defined') | list | length }} {{ messages | map(attribute='role') | unique | join(',') }}"
     " {{ ['a', 'b'] | map('upper') | join }}", {"messages": MSGS}),
    ("f_default", "{{ x | default('d') }} {{ y | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }}"
     " {{ none | d('n') }}", {"y": "set"}),
    ("f_items_dictsort", "{% for k, v in d | items %}{{ k }}{{ v }}{% endfor %} {% for k, v in d | dictsort %}{{ k }}{% endfor %}",
     {"d": {"b": 2, "a": 1, "C": 3}}),
    ("f_numbers", "{{ '42' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.7 | int }} {{ '2.5' | float }} {{ -3 | abs }}"
     " {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 7 | string }} {{ 1 | float }}", {}),
    ("f_indent", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}", {}),
    ("f_misc", "{{ '<a&b>' | e }} {{ 'x' | safe }} {{ d | attr('k') }} {{ [1, 2] | map('string') | join('-') }}", {"d": {"k": 5}}),
    # string methods
    ("m_strings", "{{ s.startswith('ab') }} {{ s.endswith('ef') }} {{ s.startswith(('x', 'a')) }} {{ s.split('c') }}"
     " {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '\\n x \\n'.strip() }}"
     " {{ 'xxaxx'.lstrip('x') }} {{ 'xxaxx'.rstrip('x') }} {{ s.upper() }} {{ s.replace('cd', '-') }} {{ s.find('cd') }}"
     " {{ s.find('zz') }} {{ 'a-a-a'.count('a') }} {{ '-'.join(['x', 'y']) }} {{ 'Hi {}, {name}'.format('A', name='B') }}"
     " {{ s.title() }} {{ 'a\\nb'.splitlines() }} {{ '12'.isdigit() }} {{ s.strip('af') }}", {"s": "abcdef"}),
    ("m_dict", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }} {{ d.keys() | list }} {{ d.values() | list }}"
     " {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}", {"d": {"a": 1, "b": 2}}),
    # globals
    ("range", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {% for i in range(2) %}{{ i }}{% endfor %}", {}),
    ("dict_global", "{{ dict(a=1, b='x') }} {{ dict({'z': 1}, y=2) | tojson }}", {}),
    ("raise_not_taken", "{% if messages[0].role not in ['system', 'user'] %}{{ raise_exception('bad start') }}{% endif %}ok",
     {"messages": MSGS}),
    # realistic pieces
    ("chat_tools_json", "{%- for m in messages %}<|{{ m.role }}|>\n{{ m.content | trim }}\n{%- if m.tool_calls %}"
     "{%- for tc in m.tool_calls %}\n{{ {'name': tc.function.name, 'arguments': tc.function.arguments} | tojson }}"
     "{%- endfor %}{%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}<|assistant|>\n{% endif %}",
     {"messages": [{"role": "user", "content": "  weather? "},
                   {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
                   {"role": "tool", "content": "{\"temp\": 21}", "tool_call_id": "c1"}],
      "add_generation_prompt": True}),
    ("system_merge", "{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content'] %}"
     "{%- set loop_messages = messages[1:] %}{%- else %}{%- set sys = '' %}{%- set loop_messages = messages %}{%- endif %}"
     "{%- for message in loop_messages %}{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
     "{{- raise_exception('roles must alternate') }}{%- endif %}{%- if loop.first and sys %}[SYS]{{ sys }}[/SYS]{%- endif %}"
     "{{- '[' ~ message['role'] | upper ~ ']' ~ message['content'] }}{%- endfor %}", {"messages": MSGS}),
]

ERROR_CASES = [
    ("err_unclosed_tag", "{% if x %}never closed", {}),
    ("err_unclosed_expr", "{{ x ", {}),
    ("err_unknown_filter", "{{ x | no_such_filter }}", {"x": 1}),
    ("err_undefined_attr", "{{ nothing.attr }}", {}),
    ("err_add_types", "{{ 'a' + 1 }}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_raise", "{{ raise_exception('Only user and assistant roles are supported!') }}", {}),
    ("err_raise_in_loop", "{% for m in messages %}{% if m.role == 'system' and not loop.first %}"
     "{{ raise_exception('System message must be first') }}{% endif %}{% endfor %}",
     {"messages": MSGS[1:] + MSGS[:1]}),
    ("err_bad_syntax", "{{ 1 + }}", {}),
    ("err_endfor_mismatch", "{% for x in xs %}{% endif %}", {"xs": []}),
    ("err_unknown_tag", "{% include 'other.html' %}", {}),
    ("err_call_undefined", "{{ nope() }}", {}),
    ("err_not_iterable", "{% for x in 5 %}{% endfor %}", {}),
]


# Conversations with tool calls through the fixture templates. Messages are OpenAI-style (a tool call's
# arguments a JSON string); jinja2 gets them as vLLM passes them (arguments parsed into a dict).
TOOL_TALK = [
    {"role": "system", "content": "You help."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp\": 25}"},
]
CHAT_CASES = [
    ("qwen3", "tool-round-trip", TOOL_TALK, {"tools": TOOLS, "add_generation_prompt": True}),
    ("qwen3", "tool-answer-after", TOOL_TALK + [{"role": "assistant", "content": "<think>\nBoth warm.\n</think>\n\nParis 21, Rome 25."}],
     {"tools": TOOLS, "add_generation_prompt": False}),
    ("qwen3", "thinking-off", [{"role": "user", "content": "Hi"}], {"add_generation_prompt": True, "enable_thinking": False}),
    ("qwen3", "reasoning-content", [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "reasoning_content": "why"}],
     {"add_generation_prompt": False}),
    ("gemma3", "alternation-error", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], {"add_generation_prompt": True}),
    ("llama3_1", "trim", [{"role": "user", "content": "  padded\n"}], {"add_generation_prompt": True}),
]


def vllm_messages(messages):
    out = []
    for m in messages:
        m = json.loads(json.dumps(m))
        if m.get("content") is None:
            m["content"] = ""
        for call in m.get("tool_calls") or []:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        out.append(m)
    return out


def render_chat_case(name, messages, kwargs):
    with open(f"tests/data/fixtures/chat_templates/{name}/tokenizer_config.json") as f:
        config = json.load(f)
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if config.get(k)}
    kwargs = dict(kwargs)
    return env.from_string(config["chat_template"]).render(
        messages=vllm_messages(messages), tools=kwargs.pop("tools", None), documents=None, **special, **kwargs)


def main():
    chat = []
    for name, case, messages, kwargs in CHAT_CASES:
        entry = {"template": name, "case": case, "messages": messages, "kwargs": kwargs}
        try:
            entry["rendered"] = render_chat_case(name, messages, kwargs)
        except jinja2.exceptions.TemplateError as e:
            entry["error"] = str(e)
        chat.append(entry)
    out = []
    for name, template, variables in CASES:
        text = env.from_string(template).render(**variables)
        out.append({"name": name, "template": template, "variables": variables, "rendered": text})
    for name, template, variables in ERROR_CASES:
        try:
            env.from_string(template).render(**variables)
        except Exception as e:  # noqa: BLE001 - jinja2 raises several kinds
            out.append({"name": name, "template": template, "variables": variables, "error": str(e)})
            continue
        sys.exit(f"{name}: jinja2 rendered it without an error")
    path = "tests/data/fixtures/chat_templates/jinja_cases.json"
    with open(path, "w") as f:
        json.dump({"reference": f"jinja2 {jinja2.__version__}, configured as transformers' chat templates",
                   "cases": out, "chat_cases": chat}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{len(out)} cases -> {path}")


if __name__ == "__main__":
    main()
