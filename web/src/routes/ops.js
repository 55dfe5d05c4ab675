// The operators' dashboard (运维看板), also the exam authority's. `?wall=1` shows it on a
// wall screen without the site's menus (meta.wall). The gateway's /dashboard redirects here.
// See routes/public.js for the meta fields.

export default [
  {
    path: '/dashboard', name: 'dashboard', component: () => import('../views/ops/Dashboard.vue'),
    meta: { title: '运维看板', roles: ['operator', 'authority'], menu: '运维看板', order: 70,
      home: ['operator'], wall: true },
  },
]
