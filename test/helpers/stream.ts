import { setTimeout as sleep } from 'node:timers/promises';
import { answer, type Response } from './app.js';

/**
 * Sends a body in chunks with pauses between them, without a Content-Length (chunked), as a slow
 * or streaming client does.
 */
export async function streamed(
  url: string,
  chunks: string[],
  options: { method?: string; headers?: Record<string, string>; pauseMs?: number } = {},
): Promise<Response> {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(encoder.encode(chunk));
        if (options.pauseMs) await sleep(options.pauseMs);
      }
      controller.close();
    },
  });
  const res = await fetch(url, {
    method: options.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body,
    duplex: 'half',
  } as RequestInit);
  return answer(res);
}
