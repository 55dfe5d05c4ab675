// The candidate's pages (考生). See routes/public.js for the meta fields.

const C = ['candidate']

export default [
  {
    path: '/me', name: 'candidate-home', component: () => import('../views/candidate/Home.vue'),
    meta: { title: '我的报名', roles: C, menu: '首页', order: 10, home: true },
  },
]
