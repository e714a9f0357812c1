import type {
  ChatCompletionContentPart,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { inputItemText } from '../compose.js';
import type { ComposedInput, SubmitInputRequest } from '../schemas.js';

/** Audio formats the chat completions API takes as `input_audio`. */
const CHAT_AUDIO: Record<string, 'wav' | 'mp3'> = { 'audio/wav': 'wav', 'audio/mpeg': 'mp3' };

/**
 * The composed input as one user message: the evidence text, each raw asset (images as data
 * URLs, wav/mp3 audio as input_audio) still inside the evidence, the closing line, then the
 * caller's request and input items. `read` returns an asset's bytes by SHA-256.
 */
export async function buildChatMessages(
  input: ComposedInput,
  read: (sha256: string) => Promise<Buffer>,
): Promise<ChatCompletionMessageParam[]> {
  const parts: ChatCompletionContentPart[] = [{ type: 'text', text: input.evidence_text }];
  for (const a of input.attachments) {
    const bytes = await read(a.sha256);
    const label = `Raw ${a.media_type} of observation ${a.observation_id} (untrusted evidence):`;
    if (a.media_type.startsWith('image/')) {
      parts.push(
        { type: 'text', text: label },
        { type: 'image_url', image_url: { url: `data:${a.media_type};base64,${bytes.toString('base64')}` } },
      );
    } else if (CHAT_AUDIO[a.media_type]) {
      parts.push(
        { type: 'text', text: label },
        { type: 'input_audio', input_audio: { data: bytes.toString('base64'), format: CHAT_AUDIO[a.media_type] } },
      );
    } else {
      parts.push({
        type: 'text',
        text: `(raw ${a.media_type} of observation ${a.observation_id} not sent: the chat API takes only wav and mp3 audio)`,
      });
    }
  }
  parts.push({ type: 'text', text: input.footer });
  if (input.request.content) parts.push({ type: 'text', text: input.request.content });
  for (const item of input.request.input_items ?? []) parts.push(itemPart(item));
  return [{ role: 'user', content: parts }];
}

/** An input item as a content part: images by URL, everything else as text. */
function itemPart(item: Record<string, unknown>): ChatCompletionContentPart {
  const image = item.image_url;
  const url =
    typeof image === 'string' ? image : typeof image === 'object' && image !== null ? (image as { url?: unknown }).url : undefined;
  if (typeof url === 'string' && (item.type === 'image_url' || item.type === 'input_image'))
    return { type: 'image_url', image_url: { url } };
  return { type: 'text', text: inputItemText(item) };
}

type Generation = NonNullable<SubmitInputRequest['generation']>;
type GenerationParams = Partial<
  Pick<
    ChatCompletionCreateParamsNonStreaming,
    'temperature' | 'top_p' | 'max_tokens' | 'max_completion_tokens' | 'response_format' | 'seed' | 'stop' | 'reasoning_effort'
  >
>;

/**
 * The generation settings the chat API understands. Tool settings (`tool_choice`,
 * `allow_parallel_tool_calls`) are dropped: observd sends no tools, and the API refuses them alone.
 */
export function generationParams(g: Generation | undefined): GenerationParams {
  const out: GenerationParams = {};
  if (!g) return out;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  if (num(g.temperature) !== undefined) out.temperature = num(g.temperature);
  if (num(g.top_p) !== undefined) out.top_p = num(g.top_p);
  if (num(g.max_output_tokens) !== undefined) out.max_completion_tokens = num(g.max_output_tokens);
  else if (num(g.max_tokens) !== undefined) out.max_tokens = num(g.max_tokens);
  if (num(g.seed) !== undefined) out.seed = num(g.seed);
  const rf = g.response_format as { type?: unknown } | undefined;
  if (rf && typeof rf === 'object' && (rf.type === 'text' || rf.type === 'json_object' || rf.type === 'json_schema')) {
    out.response_format = rf as GenerationParams['response_format'];
  }
  if (typeof g.stop === 'string' || (Array.isArray(g.stop) && g.stop.every((s) => typeof s === 'string')))
    out.stop = g.stop as string | string[];
  if (typeof g.reasoning_effort === 'string') out.reasoning_effort = g.reasoning_effort as GenerationParams['reasoning_effort'];
  return out;
}
