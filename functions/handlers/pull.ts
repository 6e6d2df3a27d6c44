import { pullAndAck } from '../domain/groups/consume.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, PullBody } from '../http/schemas.js';
import { deliveryView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  body: PullBody,
  run: async ({ params, body, stores, deadline }) => {
    const { deliveries, acks } = await pullAndAck(stores, params.topic, params.group, body, deadline);
    return {
      status: 200,
      // With ackReceipts the reply also says what they settled, as an ack's reply would.
      body: { messages: deliveries.map(deliveryView), ...(acks ? { acked: acks.settled, stale: acks.stale } : {}) },
    };
  },
});
