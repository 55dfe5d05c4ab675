// The candidate's pages (考生). See routes/public.js for the meta fields.

const C = ['candidate']
const page = (name, path, component, title, menu, order, extra = {}) => ({
  path, name, component, meta: { title, roles: C, menu, order, ...extra },
})

export default [
  page('candidate-home', '/me', () => import('../views/candidate/Home.vue'), '我的报名', '首页', 10, { home: true }),
  page('profile', '/profile', () => import('../views/candidate/Profile.vue'), '完善个人信息', '个人信息', 20),
  page('apply', '/apply', () => import('../views/candidate/Apply.vue'), '网上报名', '网上报名', 30),
  page('status', '/status', () => import('../views/candidate/Status.vue'), '报名状态', '报名状态', 40),
  page('confirm', '/confirm', () => import('../views/candidate/Confirm.vue'), '核对确认', '核对确认', 50),
  page('ticket', '/ticket', () => import('../views/candidate/Ticket.vue'), '准考证', '准考证', 60),
  page('scores', '/scores', () => import('../views/candidate/Scores.vue'), '成绩查询', '成绩', 70),
  page('certificates', '/certificates', () => import('../views/candidate/Certificates.vue'), '证书', '证书', 80),
  page('inbox', '/inbox', () => import('../views/candidate/Inbox.vue'), '站内信', '站内信', 85, { badge: 'unread' }),
]
