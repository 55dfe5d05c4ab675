// The operators' pages (运维). The dashboard itself is the gateway's /dashboard page (plain
// script, made to run for hours on a wall screen); this is its door. See routes/public.js.

export default [
  {
    path: '/ops/dashboard', name: 'ops-dashboard', component: () => import('../views/ops/Dashboard.vue'),
    meta: { title: '运维看板', roles: ['operator'], menu: '运维看板', order: 10, home: true },
  },
]
