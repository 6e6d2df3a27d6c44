import { putGroup } from '../domain/groups.js';
import { apiRoute } from '../http/route.js';
import { GroupParams, PutGroupBody } from '../http/schemas.js';
import { groupView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  body: PutGroupBody,
  run: async ({ params, body, stores }) => {
    const { created, group, signingSecret } = await putGroup(stores, params.topic, params.group, body);
    return { status: created ? 201 : 200, body: { ...groupView(group), ...(signingSecret ? { signingSecret } : {}) } };
  },
});
