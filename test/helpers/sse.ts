/** One server-sent-events frame: its `name: value` fields and its `:` comment lines. */
export interface SseFrame {
  fields: Record<string, string>;
  comments: string[];
}

/** Parses one frame (the text between two blank lines). */
function parseFrame(text: string): SseFrame {
  const frame: SseFrame = { fields: {}, comments: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) frame.comments.push(line);
    else {
      const [name, ...rest] = line.split(': ');
      frame.fields[name] = rest.join(': ');
    }
  }
  return frame;
}

/**
 * Reads an SSE body frame by frame as it arrives, handing each to `onFrame`, until the stream
 * ends, or until the chunk in which `onFrame` returned true, which cancels the stream.
 * Rejects if reading fails (as it does when the request is aborted).
 */
export async function readSse(body: ReadableStream<Uint8Array>, onFrame: (frame: SseFrame) => boolean | undefined): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let stop = false;
    for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
      const frame = parseFrame(buffer.slice(0, i));
      buffer = buffer.slice(i + 2);
      if (onFrame(frame)) stop = true;
    }
    if (stop) return reader.cancel();
  }
}
