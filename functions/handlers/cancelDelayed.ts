import { cancelDelayed } from '../domain/delay/manage.js';
import { apiRoute } from '../http/route.js';
import { DelayedParams } from '../http/schemas.js';

export const handler = apiRoute({
  params: DelayedParams,
  run: async ({ params, stores }) => {
    await cancelDelayed(stores, params.topic, params.id);
    return { status: 204 };
  },
});
