import { redriveDeadLetters } from '../domain/deadLetters.js';
import { apiRoute } from '../http/route.js';
import { GroupParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: GroupParams,
  run: async ({ params, stores }) => ({
    status: 200,
    body: { redriven: await redriveDeadLetters(stores, params.topic, params.group) },
  }),
});
