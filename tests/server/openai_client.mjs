// Drives a running `baton serve` with the official openai npm client:
// completions and chat completions, streaming and not, greedy; prints one
// JSON object with what came back. Usage:
//   node openai_client.mjs BASE_URL MODEL PROMPT CHAT_MESSAGE MAX_TOKENS [API_KEY]
import OpenAI from 'openai';

const [baseURL, model, prompt, chatMessage, maxTokensArg, apiKey] = process.argv.slice(2);
const maxTokens = parseInt(maxTokensArg, 10);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: apiKey || 'unused', maxRetries: 0, timeout: 120000 });
const out = {};

const c = await client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
out.completion = { id: c.id, object: c.object, text: c.choices[0].text, finish_reason: c.choices[0].finish_reason, usage: c.usage };

{
  const stream = await client.completions.create({
    model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  const r = { text: '', num_chunks: 0, finish_reason: null, usage: null };
  for await (const chunk of stream) {
    if (chunk.usage) r.usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    r.num_chunks += 1;
    r.text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) r.finish_reason = chunk.choices[0].finish_reason;
  }
  out.completion_stream = r;
}

const messages = [{ role: 'user', content: chatMessage }];
const cc = await client.chat.completions.create({ model, messages, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
out.chat = {
  id: cc.id, object: cc.object, role: cc.choices[0].message.role, text: cc.choices[0].message.content,
  finish_reason: cc.choices[0].finish_reason, usage: cc.usage,
};

{
  const stream = await client.chat.completions.create({
    model, messages, max_completion_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true },
  });
  const r = { text: '', role: null, num_content_chunks: 0, finish_reason: null, usage: null };
  for await (const chunk of stream) {
    if (chunk.usage) r.usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    const d = chunk.choices[0].delta;
    if (d.role) r.role = d.role;
    if (d.content) { r.text += d.content; r.num_content_chunks += 1; }
    if (chunk.choices[0].finish_reason) r.finish_reason = chunk.choices[0].finish_reason;
  }
  out.chat_stream = r;
}

// The openai-node helper that drains a stream into a final message.
{
  const runner = client.beta.chat.completions.stream({ model, messages, max_tokens: maxTokens, temperature: 0, ignore_eos: true });
  const final = await runner.finalChatCompletion();
  out.chat_stream_helper = { text: final.choices[0].message.content, finish_reason: final.choices[0].finish_reason };
}

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

try {
  await client.completions.create({ model, prompt, max_tokens: 0 });
  out.bad_request = { status: 200 };
} catch (e) {
  out.bad_request = { status: e.status, message: e.message, type: e.type, param: e.param, name: e.constructor.name };
}
try {
  await client.completions.create({ model: 'no-such-model', prompt, max_tokens: 1 });
  out.not_found = { status: 200 };
} catch (e) {
  out.not_found = { status: e.status, code: e.code, name: e.constructor.name };
}

console.log(JSON.stringify(out));
