import test from 'ava';
import { type Response, TARGETS } from '../helpers/app.js';
import { createEvent } from '../helpers/events.js';
import { cents, orderStates, pay, reserve, seatStates } from '../helpers/purchase.js';
import { accountsOf, type Buyer, checkSale, newBuyers, outcome, tally } from '../helpers/sale.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * A flash sale: 1,000 seats and 300 buyers at once, each with a limited budget, each looping
 * "pick 1–4 seats believed available, reserve, pay" until the event is sold out or their credits
 * are gone. What the buyers believe is shared and learnt from the answers (a refusal names the
 * refused seats), as a crowd refreshing one seat map would. Afterwards nothing answered 5xx, and
 * the databases agree with each other and with what the buyers were told: no seat sold twice,
 * SOLD seats exactly the seats of CONFIRMED orders, every credit accounted for. Time is logged,
 * never asserted on.
 */

const ROWS = 20;
const SEATS_PER_ROW = 50;
const BUYERS = 300;
/** A buyer's loop ends long before this; reaching it means the sale stopped making progress. */
const MAX_STEPS = 200;
const EXPECTED = {
  reserve: ['200', '409 SEAT_UNAVAILABLE', '409 SEAT_ALREADY_SOLD'],
  pay: ['200'],
  map: ['200'],
};

const random = (n: number) => Math.floor(Math.random() * n);

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind);

  test.serial(
    `[${kind}] 300 buyers with limited credits on 1,000 seats: every seat sold once, every credit kept`,
    async (t) => {
      const prepared = performance.now();
      const e = await createEvent(app, admin, {
        rows: Array.from({ length: ROWS }, (_, i) => ({
          row_number: String.fromCharCode(65 + i),
          seats: SEATS_PER_ROW,
          category: i < 5 ? 'CAT1' : 'CAT2',
        })),
      });
      t.is(e.totalSeats, ROWS * SEATS_PER_ROW);
      const price = new Map(e.seats.map((s) => [s.seat_id, cents(s.price)]));
      const cheapest = Math.min(...price.values());
      // Budgets of 100 to 700 credits, cents included: about 1,200 seats' worth in all, so the sale
      // sells out while the smaller budgets run dry.
      const buyers = await newBuyers(app, admin, BUYERS, () => (10_000 + random(60_001)) / 100);
      const granted = buyers.reduce((a, b) => a + b.granted, 0);

      const answers: Record<keyof typeof EXPECTED, Response[]> = { reserve: [], pay: [], map: [] };
      const unexpected: string[] = [];
      const note = (route: keyof typeof EXPECTED, res: Response) => {
        answers[route].push(res);
        if (!EXPECTED[route].includes(outcome(res)))
          unexpected.push(`${route}: ${outcome(res)} ${JSON.stringify(res.body)}`);
      };

      const believed = new Set(price.keys());
      let soldOut = false;
      let refreshing: Promise<void> | undefined;
      /** One seat-map read at a time, shared by every buyer who ran out of seats to try. */
      const refresh = () => {
        refreshing ??= (async () => {
          const map = await app.request('GET', `/api/events/${e.eventId}`);
          note('map', map);
          if (map.status !== 200) return;
          believed.clear();
          for (const s of map.body.data.seats) if (s.status === 'AVAILABLE') believed.add(s.seat_id);
          if (believed.size === 0) soldOut = true;
        })().finally(() => {
          refreshing = undefined;
        });
        return refreshing;
      };

      /** What each buyer was told it bought: seat → order, and the credits charged. */
      const bought = new Map<string, { orderId: string; userId: string }>();
      let charged = 0;

      const shop = async (b: Buyer): Promise<string> => {
        let balance = b.granted;
        for (let step = 0; step < MAX_STEPS; step++) {
          if (soldOut) return 'sold out';
          if (balance < cheapest) return 'credits gone';
          if (believed.size === 0) {
            await refresh();
            continue;
          }
          const affordable = [...believed].filter((s) => price.get(s)! <= balance);
          if (affordable.length === 0) return 'credits gone';
          const want = 1 + random(4);
          const pick: string[] = [];
          let cost = 0;
          for (let tries = 0; tries < 4 * want && pick.length < want; tries++) {
            const s = affordable[random(affordable.length)];
            if (!pick.includes(s) && cost + price.get(s)! <= balance) {
              pick.push(s);
              cost += price.get(s)!;
            }
          }
          const r = await reserve(app, b, pick);
          note('reserve', r);
          if (r.status === 200) {
            for (const s of pick) believed.delete(s);
            const orderId = r.body.data.order_id;
            const p = await pay(app, b, orderId, `pay-${orderId}`);
            note('pay', p);
            if (p.status !== 200) return `pay refused: ${outcome(p)}`;
            balance = cents(p.body.data.remaining_balance);
            charged += cents(p.body.data.credits_charged);
            for (const s of pick) bought.set(s, { orderId, userId: b.userId });
            continue;
          }
          if (r.status !== 409 || !['SEAT_UNAVAILABLE', 'SEAT_ALREADY_SOLD'].includes(r.body?.error_code)) {
            return `reserve refused: ${outcome(r)}`;
          }
          const named = (r.body.details ?? [])
            .map((d: { field: string }) => /^seat_ids\[(\d+)\]$/.exec(d.field))
            .filter(Boolean)
            .map((m: RegExpExecArray) => pick[Number(m[1])]);
          // Whatever the refusal named is taken; were it to name nothing, forget all of them.
          for (const s of named.length ? named : pick) believed.delete(s);
        }
        return 'out of steps';
      };

      const started = performance.now();
      const setup = Math.round(started - prepared);
      const ends = await Promise.all(buyers.map(shop));
      const elapsed = Math.round(performance.now() - started);
      const ending: Record<string, number> = {};
      for (const end of ends) ending[end] = (ending[end] ?? 0) + 1;
      t.log(
        `${kind}: setup ${setup} ms, sale ${elapsed} ms, ${bought.size} seats sold; reserve ${JSON.stringify(tally(answers.reserve))}, ` +
          `pay ${JSON.stringify(tally(answers.pay))}, ${answers.map.length} seat-map reads; buyers ${JSON.stringify(ending)}`,
      );

      const all = [...answers.reserve, ...answers.pay, ...answers.map];
      t.deepEqual(all.filter((a) => a.status >= 500).map(outcome), [], 'no 5xx at all');
      t.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} unexpected answers`);
      t.deepEqual(
        ends.filter((end) => end !== 'sold out' && end !== 'credits gone'),
        [],
        'every buyer stopped because the event sold out or their credits were gone',
      );

      await checkSale(t, app, { granted });
      const seats = (await seatStates(app)).filter((s) => s.event_id === e.eventId);
      const sold = seats.filter((s) => s.status === 'SOLD');
      // What the buyers were told is what the databases say.
      t.deepEqual(
        sold.map((s) => [s.id, s.sold_order_id, s.owner_user_id]).sort(),
        [...bought].map(([s, b]) => [s, b.orderId, b.userId]).sort(),
        'the SOLD seats are exactly the seats the buyers were told they bought',
      );
      const confirmed = (await orderStates(app)).filter((o) => o.status === 'CONFIRMED');
      t.is(
        confirmed.reduce((a, o) => a + o.total, 0),
        charged,
        'the CONFIRMED totals are what the pays said they charged',
      );
      t.deepEqual(
        [...new Set(seats.map((s) => s.status))].filter((s) => s !== 'SOLD' && s !== 'AVAILABLE'),
        [],
        'every seat ended SOLD or AVAILABLE: each reserve was paid',
      );
      const left = seats.filter((s) => s.status === 'AVAILABLE');
      if (left.length) {
        // Not sold out: the buyers stopped because no one could pay for any seat left.
        const accounts = await accountsOf(app);
        const richest = Math.max(...buyers.map((b) => accounts.get(b.userId)!.balance));
        const cheapestLeft = Math.min(...left.map((s) => price.get(s.id)!));
        t.true(cheapestLeft > richest, `${left.length} seats left from ${cheapestLeft}, a buyer still has ${richest}`);
      } else {
        t.true(soldOut, 'the buyers saw the sale sell out');
      }

      // A few buyers' tickets, as the API shows them, are the seats they bought.
      const some = buyers.filter((b) => [...bought.values()].some((x) => x.userId === b.userId)).slice(0, 5);
      for (const b of some) {
        const res = await app.request('GET', '/api/tickets?per_page=100', { token: b.token });
        t.is(res.status, 200, JSON.stringify(res.body));
        t.deepEqual(
          res.body.data.map((x: { seat_id: string }) => x.seat_id).sort(),
          [...bought]
            .filter(([, x]) => x.userId === b.userId)
            .map(([s]) => s)
            .sort(),
        );
      }
    },
  );
}
