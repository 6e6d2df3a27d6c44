import { parsePosition, resetGroup, type Position } from '../domain/groups/groups.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, ResetBody } from '../http/schemas.js';

export const handler = apiRoute({
  params: GroupParams,
  body: ResetBody,
  run: async ({ params, body, stores }) => {
    const to: Position = typeof body.to === 'string' ? body.to : 'time' in body.to ? parsePosition(body.to.time) : body.to;
    return { status: 200, body: await resetGroup(stores, params.topic, params.group, to) };
  },
});
