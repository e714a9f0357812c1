import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';

/** One request the fake received on `/v1/audio/transcriptions`. */
export interface TranscriptionCall {
  model?: string;
  authorization?: string;
  fileName?: string;
  fileType?: string;
  file: Buffer;
}

/** One request the fake received on `/v1/chat/completions`. */
export interface ChatCall {
  authorization?: string;
  /** The parsed JSON body. */
  body: Record<string, unknown>;
  /** The body as sent. */
  raw: string;
}

export interface FakeOpenAI {
  /** API root to configure as `transcription.base_url` or `runs.openai.base_url`. */
  baseUrl: string;
  calls: TranscriptionCall[];
  /** What the next requests get: text, or an HTTP error status. */
  reply: { text: string } | { status: number };
  chatCalls: ChatCall[];
  /** What the next chat completions get: a message and usage, or an HTTP error status. */
  chatReply: { content: string; usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } } | { status: number };
  /** While set, responses wait until `release()`. */
  hold(): void;
  release(): void;
  /** Resolves once `n` calls have arrived. */
  waitForCalls(n: number): Promise<void>;
  close(): Promise<void>;
}

function readMultipart(req: IncomingMessage): Promise<TranscriptionCall> {
  return new Promise((resolve, reject) => {
    const call: TranscriptionCall = { file: Buffer.alloc(0), authorization: req.headers.authorization };
    const bb = busboy({ headers: req.headers });
    bb.on('field', (name, value) => {
      if (name === 'model') call.model = value;
    });
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (name === 'file') {
          call.file = Buffer.concat(chunks);
          call.fileName = info.filename;
          call.fileType = info.mimeType;
        }
      });
    });
    bb.on('close', () => resolve(call));
    bb.on('error', reject);
    req.pipe(bb);
  });
}

/** A real OpenAI-compatible transcription server on loopback, so the real `openai` client is exercised. */
export async function startFakeOpenAI(): Promise<FakeOpenAI> {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const listeners: Array<() => void> = [];
  const fake: Omit<FakeOpenAI, 'baseUrl' | 'close'> = {
    calls: [],
    reply: { text: 'hello from the fake transcriber' },
    chatCalls: [],
    chatReply: { content: 'hello from the fake chat model', usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } },
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open?.();
      gate = undefined;
    },
    waitForCalls(n) {
      return new Promise((resolve) => {
        const check = () => (fake.calls.length >= n ? (resolve(), true) : false);
        if (!check()) listeners.push(() => void check());
      });
    },
  };
  const server: Server = createServer(async (req, res) => {
    if (req.method === 'POST' && req.url === '/v1/chat/completions') return answerChat(req, res);
    if (req.method !== 'POST' || req.url !== '/v1/audio/transcriptions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'no such route' } }));
      return;
    }
    const call = await readMultipart(req);
    fake.calls.push(call);
    for (const l of listeners) l();
    if (gate) await gate;
    const reply = fake.reply;
    if ('status' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'the fake was told to fail', type: 'server_error' } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: reply.text }));
  });
  async function answerChat(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    fake.chatCalls.push({ authorization: req.headers.authorization, body: JSON.parse(raw), raw });
    for (const l of listeners) l();
    if (gate) await gate;
    const reply = fake.chatReply;
    if ('status' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'the fake was told to fail', type: 'server_error' } }));
      return;
    }
    const body = {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 0,
      model: String(fake.chatCalls[fake.chatCalls.length - 1].body.model),
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: reply.content, refusal: null } }],
      usage: reply.usage,
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () => {
      fake.release();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  });
}
