import { listDelayed } from '../domain/delay/manage.js';
import { apiRoute } from '../http/route.js';
import { DelayedQuery, TopicParams } from '../http/schemas.js';
import { pendingView } from '../http/views.js';

export const handler = apiRoute({
  params: TopicParams,
  query: DelayedQuery,
  run: async ({ params, query, stores }) => {
    const page = await listDelayed(stores, params.topic, query.limit, query.after);
    return { status: 200, body: { messages: page.items.map((p) => pendingView(p, false)), ...(page.next ? { next: page.next } : {}) } };
  },
});
