import { listDeadLetters } from '../domain/groups/deadLetters.js';
import { apiRoute } from '../http/route.js';
import { DeadLetterQuery, GroupParams } from '../http/schemas.js';
import { messageView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  query: DeadLetterQuery,
  run: async ({ params, query, stores }) => {
    const page = await listDeadLetters(stores, params.topic, params.group, query.limit, query.after);
    return {
      status: 200,
      body: {
        messages: page.letters.map((l) => ({ ...messageView(l), deadAt: l.deadAt, deliveryCount: l.deliveryCount, reason: l.reason })),
        ...(page.next ? { next: page.next } : {}),
      },
    };
  },
});
