// A full tool-calling exchange with the official openai npm client against a
// running `baton serve` whose outputs are scripted (--scripted-output):
// request with tools -> tool_calls -> tool result -> answer, first without
// streaming, then streaming (deltas accumulated as OpenAI clients do).
// Prints one JSON object with what came back. Usage:
//   node openai_tools_client.mjs BASE_URL MODEL
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
const tools = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];
const question = { role: 'user', content: 'What is the weather in Paris?' };
const out = {};

async function exchange(stream) {
  const r = {};
  let message;
  if (!stream) {
    const first = await client.chat.completions.create({ model, messages: [question], tools, max_tokens: 64 });
    message = first.choices[0].message;
    r.first_finish_reason = first.choices[0].finish_reason;
  } else {
    const chunks = await client.chat.completions.create({
      model, messages: [question], tools, max_tokens: 64, stream: true,
    });
    message = { role: 'assistant', content: '', tool_calls: [] };
    for await (const chunk of chunks) {
      if (chunk.choices.length === 0) continue;
      const d = chunk.choices[0].delta;
      if (d.content) message.content += d.content;
      for (const tc of d.tool_calls || []) {
        const slot = message.tool_calls[tc.index] ||= { id: '', type: 'function', function: { name: '', arguments: '' } };
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.function.name += tc.function.name;
        if (tc.function?.arguments) slot.function.arguments += tc.function.arguments;
      }
      if (chunk.choices[0].finish_reason) r.first_finish_reason = chunk.choices[0].finish_reason;
    }
    if (message.content === '') message.content = null;
  }
  r.content = message.content;
  r.tool_calls = message.tool_calls;
  const call = message.tool_calls[0];
  const args = JSON.parse(call.function.arguments);
  const result = { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ city: args.city, sky: 'sunny' }) };
  const second = await client.chat.completions.create({
    model, messages: [question, message, result], tools, max_tokens: 64,
  });
  r.answer = second.choices[0].message.content;
  r.answer_finish_reason = second.choices[0].finish_reason;
  r.answer_tool_calls = second.choices[0].message.tool_calls ?? null;
  return r;
}

out.plain = await exchange(false);
out.stream = await exchange(true);
console.log(JSON.stringify(out));
