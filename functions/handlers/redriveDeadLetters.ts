import { redriveDeadLetters } from '../domain/groups/deadLetters.js';
import { apiRoute } from '../http/route.js';
import { GroupParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: GroupParams,
  run: async ({ params, stores, deadline }) => ({
    status: 200,
    body: await redriveDeadLetters(stores, params.topic, params.group, deadline),
  }),
});
