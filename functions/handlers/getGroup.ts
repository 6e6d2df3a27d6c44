import { describeGroup } from '../domain/groups/groups.js';
import { apiRoute } from '../http/route.js';
import { GroupParams } from '../http/schemas.js';
import { groupWithLagView } from '../http/views.js';

export const handler = apiRoute({
  params: GroupParams,
  run: async ({ params, stores }) => ({
    status: 200,
    body: groupWithLagView(await describeGroup(stores, params.topic, params.group)),
  }),
});
