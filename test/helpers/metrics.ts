import type { TestApp } from './app.js';

/**
 * The value of a Prometheus counter on /metrics (0 when absent): the series with exactly these
 * labels, or without labels the first series of that name; summed over the app's processes.
 */
export async function metric(app: TestApp, name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = await Promise.all(
    app.sliceUrls.map(async (url) => seriesValue(await (await fetch(`${url}/metrics`)).text(), name, labels)),
  );
  return values.reduce((a, b) => a + b, 0);
}

function seriesValue(text: string, name: string, labels: Record<string, string>): number {
  const series = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .join(',');
  const prefixes = series ? [`${name}{${series}} `] : [`${name} `, `${name}{`];
  const line = text.split('\n').find((l) => prefixes.some((p) => l.startsWith(p)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
