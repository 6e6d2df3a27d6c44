import { nack } from '../domain/groups/consume.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, NackBody } from '../http/schemas.js';

export const handler = apiRoute({
  params: GroupParams,
  body: NackBody,
  run: async ({ params, body, stores }) => {
    const { settled, stale } = await nack(stores, params.topic, params.group, body.receipts, body.retryAfterSeconds);
    return { status: 200, body: { nacked: settled, stale } };
  },
});
