import { ack } from '../domain/groups/consume.js';
import { apiRoute } from '../http/route.js';
import { AckBody, GroupParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: GroupParams,
  body: AckBody,
  run: async ({ params, body, stores }) => {
    const { settled, stale } = await ack(stores, params.topic, params.group, body.receipts);
    return { status: 200, body: { acked: settled, stale } };
  },
});
