// The exam authority's pages (考试机构); its 运维看板 is the operators' (routes/ops.js).
// See routes/public.js for the meta fields.

const A = ['authority']
const page = (path, name, file, title, order, extra = {}) => ({
  path, name, component: file, meta: { title, roles: A, menu: title, order, ...extra },
})

export default [
  page('/authority/sessions', 'authority-sessions', () => import('../views/authority/Sessions.vue'),
    '考试与时间安排', 10, { home: true }),
  page('/authority/rules', 'authority-rules', () => import('../views/authority/Rules.vue'),
    '报考条件', 15),
  page('/authority/spot-check', 'authority-spot-check', () => import('../views/authority/SpotCheck.vue'),
    '抽查复核', 20),
  page('/authority/check-in', 'authority-check-in', () => import('../views/authority/CheckIn.vue'),
    '考场签到', 25),
  page('/authority/scores', 'authority-scores', () => import('../views/authority/Scores.vue'),
    '成绩导入与发布', 30),
  page('/authority/voiding', 'authority-voiding', () => import('../views/authority/Voiding.vue'),
    '报名无效与成绩无效', 40),
  page('/authority/certificates', 'authority-certificates',
    () => import('../views/authority/Certificates.vue'), '证书', 50),
  page('/authority/audit', 'authority-audit', () => import('../views/authority/Audit.vue'),
    '审计记录', 60),
]
