import { pull } from '../domain/groups/consume.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, PullBody } from '../http/schemas.js';
import { deliveryView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  body: PullBody,
  run: async ({ params, body, stores, deadline }) => ({
    status: 200,
    body: { messages: (await pull(stores, params.topic, params.group, body, deadline)).map(deliveryView) },
  }),
});
