import { getDelayed } from '../domain/delay/manage.js';
import { apiRoute } from '../http/route.js';
import { DelayedParams } from '../http/schemas.js';
import { pendingView } from '../http/views.js';

export const handler = apiRoute({
  params: DelayedParams,
  run: async ({ params, stores }) => ({ status: 200, body: pendingView(await getDelayed(stores, params.topic, params.id), true) }),
});
