import { setTimeout as sleep } from 'node:timers/promises';
import type { Response, TestApp } from './app.js';
import type { OtpCatcher } from './otp-catcher.js';
import type { TestUser } from './users.js';

/** What a test asks of the transfer routes; amounts in credits as the API takes them. */
export interface Deal {
  seat: string;
  seller: TestUser;
  buyer: TestUser;
  credits: number;
}

/** POST /api/transfer/initiate by `caller` (the seller unless said otherwise). */
export function initiate(app: TestApp, deal: Deal, caller: TestUser = deal.seller): Promise<Response> {
  return app.request('POST', '/api/transfer/initiate', {
    token: caller.token,
    body: {
      seat_id: deal.seat,
      seller_user_id: deal.seller.userId,
      buyer_user_id: deal.buyer.userId,
      credits_amount: deal.credits,
    },
  });
}

/** An initiation that must succeed: the transfer id. */
export async function initiated(app: TestApp, deal: Deal, caller?: TestUser): Promise<string> {
  const res = await initiate(app, deal, caller);
  if (res.status !== 201) throw new Error(`initiate: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.transfer_id;
}

/** The last code each party was sent for a transfer, once the outbox has delivered them. */
export async function codesOf(otp: OtpCatcher, transferId: string, deal: Deal) {
  const sent = await otp.sent(transferId);
  const last = (user: TestUser) => sent.filter((d) => d.user_id === user.userId).at(-1)?.code;
  const seller = last(deal.seller);
  const buyer = last(deal.buyer);
  if (!seller || !buyer) throw new Error(`codes of ${transferId}: ${JSON.stringify(sent)}`);
  return { seller, buyer };
}

/** The codes of a transfer, polled: a server of its own delivers them from its outbox on its own time. */
export async function codesIn(otp: OtpCatcher, transferId: string, deal: Deal) {
  for (let tries = 0; ; tries++) {
    try {
      return await codesOf(otp, transferId, deal);
    } catch (err) {
      if (tries > 100) throw err;
      await sleep(100);
    }
  }
}

/** A code that is not `code` (six digits). */
export const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

/** POST /api/transfer/confirm by `caller`, with the codes given (either may be left out). */
export function confirm(
  app: TestApp,
  caller: TestUser,
  transferId: string,
  codes: { seller?: string; buyer?: string },
): Promise<Response> {
  return app.request('POST', '/api/transfer/confirm', {
    token: caller.token,
    body: {
      transfer_id: transferId,
      ...(codes.seller !== undefined ? { seller_otp: codes.seller } : {}),
      ...(codes.buyer !== undefined ? { buyer_otp: codes.buyer } : {}),
    },
  });
}

/** POST /api/transfer/{dispute,reverse,resolve}. */
export function act(
  app: TestApp,
  caller: TestUser,
  action: 'dispute' | 'reverse' | 'resolve',
  transferId: string,
  reason = 'The seat was not as described.',
): Promise<Response> {
  return app.request('POST', `/api/transfer/${action}`, {
    token: caller.token,
    body: action === 'dispute' ? { transfer_id: transferId, reason } : { transfer_id: transferId },
  });
}

/** GET /api/transfers/{id} as `caller`. */
export const transferOf = (app: TestApp, caller: TestUser, transferId: string) =>
  app.request('GET', `/api/transfers/${transferId}`, { token: caller.token });

/** The caller's balances in cents, through the API. */
export async function balances(app: TestApp, user: TestUser) {
  const res = await app.request('GET', '/api/credits/balance', { token: user.token });
  if (res.status !== 200) throw new Error(`balance: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    spendable: Math.round(res.body.data.credit_balance * 100),
    frozen: Math.round(res.body.data.frozen_credits * 100),
  };
}
