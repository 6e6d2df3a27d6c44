import { getMessage } from '../domain/log/browse.js';
import { apiRoute } from '../http/route.js';
import { MessageParams } from '../http/schemas.js';
import { messageView } from '../http/views.js';

export const handler = apiRoute({
  params: MessageParams,
  run: async ({ params, stores }) => ({ status: 200, body: messageView(await getMessage(stores, params.topic, params.id)) }),
});
