import type { BenchDb } from './databases.js';
import { startSetupServer, stopChild } from './processes.js';
import { ADMIN, HOLD_SEATS, log, MAX_EVENT_SEATS } from './settings.js';

export interface Setup {
  mapEventId: string;
  mapSeats: number;
  mapBytes: number;
  holdEventIds: string[];
  holdSeatIds: string[];
  /** ms per created event, by seat count. */
  createMs: { seats: number; ms: number }[];
  seatMapFetchMs: number[];
}

export async function api<T>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: { success?: boolean; data?: T } | undefined;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (!res.ok || parsed?.success !== true) {
    throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  }
  return parsed.data as T;
}

export function seatMap(total: number, perRow = 100) {
  const rowsCount = Math.ceil(total / perRow);
  return Array.from({ length: rowsCount }, (_, i) => ({
    row_number: `R${i + 1}`,
    seats: i === rowsCount - 1 ? total - perRow * (rowsCount - 1) : perRow,
    // The front fifth CAT1, the next third CAT2, the rest CAT3.
    category: i < rowsCount / 5 ? 'CAT1' : i < rowsCount * (1 / 5 + 1 / 3) ? 'CAT2' : 'CAT3',
  }));
}

/**
 * A venue made through the admin API, and a way to add events to it: CAT1–CAT3, 90 days ahead,
 * `seats` seats in rows of 100. Each added event answers its id once the server made every seat.
 */
export async function benchVenue(base: string, token: string, name: string) {
  const venue = await api<{ venue_id: string }>(
    base,
    'POST',
    '/api/admin/venues',
    { name, address: '1 Benchmark Way', total_halls: 1 },
    token,
  );
  const eventDate = new Date(Date.now() + 90 * 86_400_000).toISOString();
  return async (eventName: string, seats: number): Promise<string> => {
    const e = await api<{ event_id: string; total_seats: number }>(
      base,
      'POST',
      '/api/admin/events',
      {
        name: eventName,
        venue_id: venue.venue_id,
        hall_id: 'HALL-1',
        event_date: eventDate,
        pricing_tiers: { CAT1: 188, CAT2: 128, CAT3: 68 },
        seat_map: { rows: seatMap(seats) },
      },
      token,
    );
    if (e.total_seats !== seats) throw new Error(`${eventName}: ${e.total_seats} seats created, ${seats} asked`);
    return e.event_id;
  };
}

/**
 * A fresh database filled by the real server (MODULES=user,event) through the admin API: a venue,
 * a 5,000-seat event and the hold pool of HOLD_SEATS seats in events of at most 50,000; seat ids
 * come from GET /api/events/{id}. The server stops afterwards.
 */
export async function setup(db: BenchDb): Promise<Setup> {
  const server = await startSetupServer(db, ADMIN);
  const { base } = server;
  try {
    const { access_token: token } = await api<{ access_token: string }>(base, 'POST', '/api/auth/login', ADMIN);
    const addEvent = await benchVenue(base, token, 'Bench Arena');
    const createMs: Setup['createMs'] = [];
    const create = async (name: string, seats: number) => {
      const started = performance.now();
      const eventId = await addEvent(name, seats);
      createMs.push({ seats, ms: Math.round(performance.now() - started) });
      return eventId;
    };
    const seatMapFetchMs: number[] = [];
    const seatsOf = async (eventId: string) => {
      const started = performance.now();
      const res = await fetch(`${base}/api/events/${eventId}`);
      const text = await res.text();
      seatMapFetchMs.push(Math.round(performance.now() - started));
      if (!res.ok) throw new Error(`GET /api/events/${eventId} answered ${res.status}: ${text.slice(0, 300)}`);
      const body = JSON.parse(text) as { data: { seats: { seat_id: string; status: string }[] } };
      return { ids: body.data.seats.map((s) => s.seat_id), bytes: Buffer.byteLength(text) };
    };

    log(db.kind, 'creating the 5,000-seat event and the hold pool through the admin API');
    const mapEventId = await create('Bench seat map (5,000 seats)', 5000);
    const holdEventIds: string[] = [];
    for (let left = HOLD_SEATS, n = 1; left > 0; left -= MAX_EVENT_SEATS, n++) {
      holdEventIds.push(await create(`Bench hold pool ${n}`, Math.min(left, MAX_EVENT_SEATS)));
    }
    const map = await seatsOf(mapEventId);
    const holdSeatIds: string[] = [];
    for (const id of holdEventIds) holdSeatIds.push(...(await seatsOf(id)).ids);
    if (map.ids.length !== 5000 || holdSeatIds.length !== HOLD_SEATS) {
      throw new Error(`seat maps have ${map.ids.length} and ${holdSeatIds.length} seats`);
    }
    return {
      mapEventId,
      mapSeats: map.ids.length,
      mapBytes: map.bytes,
      holdEventIds,
      holdSeatIds,
      createMs,
      seatMapFetchMs,
    };
  } finally {
    await stopChild(server);
  }
}
