// The staff area's pages (报名点工作人员): the manual-check queue (home), a case with the
// candidate and their proof, the enquiries. See routes/public.js for the meta fields.

const S = ['staff']

export default [
  {
    path: '/staff/queue', name: 'staff-queue', component: () => import('../views/staff/Queue.vue'),
    meta: { title: '人工核查', roles: S, menu: '人工核查', order: 10, home: true },
  },
  {
    path: '/staff/cases/:applicationId', name: 'staff-case',
    component: () => import('../views/staff/Case.vue'),
    meta: { title: '资格核查', roles: S },
  },
  {
    path: '/staff/enquiries', name: 'staff-enquiries',
    component: () => import('../views/staff/Enquiries.vue'),
    meta: { title: '疑问核实', roles: S, menu: '疑问核实', order: 20 },
  },
]
