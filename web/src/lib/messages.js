import { shanghaiTime } from './time.js'

// The API's refusals in Chinese. The services answer in English (operators read the logs);
// a candidate must never see English, raw JSON or an error code. A refusal is shown:
// - next to its input, when the answer names a field (`fields`), with that field's message
//   translated here (known messages, else a plain "…填写有误" for the field), and
// - near the action otherwise, with `reason`/the message translated here, else a Chinese
//   sentence for the error's code.

/** What each error code means to a candidate, when nothing finer is known. */
export const CODE_MESSAGES = {
  validation_failed: '填写的内容有误，请按提示修改。',
  unauthorized: '请先登录。',
  forbidden: '您没有办理此项业务的权限。',
  not_found: '没有找到相关记录。',
  method_not_allowed: '暂不支持此操作。',
  refused: '按照考试规定，此项业务现在不能办理。',
  conflict: '数据刚刚被更新，请刷新页面后重试。',
  too_large: '文件太大。',
  unsupported_media_type: '文件格式不符合要求。',
  rate_limited: '操作过于频繁，请稍后再试。',
  internal: '系统出现问题，已记录，请稍后再试。',
  unavailable: '系统繁忙或正在维护，请稍后再试。',
  network: '无法连接到服务器，请检查网络后重试。',
}

/** Finer reasons the services give (``error.reason``). */
export const REASON_MESSAGES = {
  locked: '连续多次密码错误，账号已临时锁定 15 分钟，请稍后再试。',
  expired: '登录已过期，请重新登录。',
  invalid_code: '验证码不正确、已过期或已使用，请重新获取。',
  signed_out: '您的密码已修改或重置，此前的登录已结束，请重新登录。',
  enquiry_open: '您的上一个疑问尚在等待报名点答复，每次只能有一个待答复的疑问。',
  nothing_to_question: '目前没有可以提出疑问的核查结果：疑问核实针对人工核查或抽查复核不通过的结果。',
}

// the timetable's windows (the session document's names)
const WINDOW_NAMES = {
  application: '网上报名', verification: '资格核查', spot_check: '抽查复核', confirmation: '核对确认',
  ticket_printing: '打印准考证', exam: '考试', scores: '查询成绩', certificates: '证书',
}
// answers' fields that describe the refusal rather than name an input
const DETAIL_FIELDS = new Set(['window', 'opens', 'closes', 'status', 'published_at', 'application',
  'application_id', 'enquiry_id', 'profile', 'ticket', 'session_id', 'list_no'])

/** Names of the fields, for messages that say which one is wrong. */
export const FIELD_LABELS = {
  name: '姓名', id_type: '证件类型', id_number: '证件号码', mobile: '手机号码',
  username: '用户名', password: '密码', old_password: '原密码', new_password: '新密码',
  photo: '照片', files: '证明材料', level: '报考级别', subjects: '报考科目',
  registration_point: '报名点', commitment: '告知承诺书', signed_name: '签名',
  exemption: '免试科目', session_id: '考试', question: '问题', email: '电子邮箱',
  address: '通讯地址', gender: '性别', birth_date: '出生日期', ethnicity: '民族',
  number: '证书编号', certificate_number: '证书编号', code: '验证码',
}

// (pattern on the English message, Chinese; $1.. from the pattern's groups)
const KNOWN = [
  [/invalid username or password|wrong username or password|username or password is wrong/i,
    '用户名或密码不正确。'],
  [/locked/i, REASON_MESSAGES.locked],
  [/too many (failed )?(login|sign-in)/i, '登录失败次数过多，请稍后再试。'],
  [/a username is 4.32 letters/i, '用户名为 4–32 位英文字母、数字或下划线。'],
  [/username is (already )?taken|already (registered|in use).*username|username.*already/i,
    '该用户名已被使用，请换一个。'],
  [/id number.*already|already.*id number|already registered/i, '该证件号码已注册过账号，请直接登录。'],
  [/mobile.*already|already.*mobile/i, '该手机号码已被其他账号使用。'],
  [/password must not be the same as the username/i, '密码不能与用户名相同。'],
  [/password needs at least one letter and one digit/i, '密码至少包含一个字母和一个数字。'],
  [/check digit/i, '证件号码最后一位校验码不正确，请核对是否有输错的数字。'],
  [/birth date in the ID number is not a real date/i, '证件号码中的出生日期不是有效日期。'],
  [/birth date in the ID number is out of range/i, '证件号码中的出生日期不在有效范围内。'],
  [/resident ID number is 18 characters/i, '居民身份证号码为 18 位：17 位数字（不以 0 开头）加 1 位数字或 X。'],
  [/passport number/i, '护照号码为 5–17 位字母或数字。'],
  [/Hong Kong\/Macao permit/i, '港澳通行证号码为 H 或 M 加 8 位或 10 位数字。'],
  [/Taiwan permit/i, '台湾通行证号码为 8 位或 10 位数字。'],
  [/mobile/i, '手机号码为 11 位数字，以 13–19 开头。'],
  [/a name has only letters/i, '姓名只能包含文字、空格和间隔号“·”。'],
  [/(shorter than|length must be between|longer than) .*?(\d+)/i, '长度不符合要求。'],
  [/current password is wrong|old password/i, '原密码不正确。'],
  [/already applied for this exam session/i, '您已报名本次考试，每人每次考试只能报名一次。'],
  [/must be 100% complete before you can apply/i, '账号信息完整度为 100% 时才能报名，请先完善个人信息。'],
  [/commitment scheme .*not open to candidates with a live record/i,
    '您在诚信档案中有记录，不能采用告知承诺制；请选择不签署承诺书，提交证明材料。'],
  [/no application for this exam session/i, '您尚未报名本次考试。'],
  [/voided by the exam authority/i, '您的报名已被考试机构认定无效（报名无效），不能再办理其他业务。'],
  [/not made under the commitment scheme/i, '本次报名未采用告知承诺制，无需撤回承诺。'],
  [/commitment can no longer be withdrawn/i, '当前状态下已不能撤回告知承诺。'],
  [/No proof is asked of this application now/i, '当前不需要提交证明材料。'],
  [/proof is accepted from (.+?) until confirmation closes at (.+?) \(Asia/i,
    '证明材料受理时间为 $1 至 $2（北京时间），现在不在受理时间内。'],
  [/already confirmed/i, '您已核对确认，无需重复操作。'],
  [/Only an application whose eligibility is confirmed can be confirmed/i,
    '资格核查通过后才能核对确认；如有疑问，请在核对确认截止前联系您的报名点。'],
  [/no admission ticket for this exam session/i, '您没有本次考试的准考证：准考证在核对确认结束后发给已核对确认的考生。'],
  [/ticket is not issued yet/i, '准考证尚未生成：考场在核对确认结束后编排。'],
  [/no admission ticket to print|No admission ticket yet/i, '没有可以打印的准考证，请联系您的报名点。'],
  // 考场签到 (the exam authority at the door)
  [/identity document does not match the candidate on this ticket/i,
    '证件与准考证上的考生不一致：考生须出示报名时使用的身份证件。'],
  [/This ticket has been cancelled and no longer admits/i, '该准考证已作废（报名无效），不能入场。'],
  [/never printed before the printing window closed, so the exam is forfeited/i,
    '该考生逾期未打印准考证，视为放弃考试，不能入场。'],
  [/^Subject (\S+) is not on this ticket; it admits to (.+?)\.?$/i, '准考证上没有科目 $1（可参加的科目：$2）。'],
  [/^Check-in for (\S+) is open from (.+?) until the sitting ends at (.+?) \(Asia\/Shanghai\); it has not opened yet/i,
    '科目 $1 的签到时间为 $2 至 $3（北京时间），现在尚未开始签到。'],
  [/^Check-in for (\S+) is open from (.+?) until the sitting ends at (.+?) \(Asia\/Shanghai\); it has closed/i,
    '科目 $1 的签到时间为 $2 至 $3（北京时间），签到已结束。'],
  [/No admission ticket has this number/i, '没有这个准考证号，请核对准考证上的号码。'],
  [/Electronic certificates can be downloaded from/i, '电子证书在证书发放时段开始后才能下载。'],
  [/was revoked on/i, '该证书已被撤销，不能下载。'],
  [/no results in this exam session/i, '您在本次考试中没有成绩记录。'],
  [/Scores of .* are published at (.+?) \(/i, '成绩将于 $1（北京时间）公布，请届时查询。'],
  [/Scores of .* have not been published yet/i, '成绩尚未公布，请稍后再查询。'],
  [/Enquiries about a manual-check or spot-check outcome must reach/i,
    '核对确认已截止，不能再提出疑问（逾期视作报名不成功）。'],
  [/no message with this id/i, '没有找到这条消息。'],
  [/No certificate/i, '没有找到该证书。'],
  [/is too large: at most (\S+ \S+)/i, '文件太大：每个文件最大 $1。'],
  [/At most (\d+) files at once/i, '一次最多上传 $1 个文件。'],
  [/must be a (PDF or JPEG|JPEG) file/i, '文件格式不符合要求：只接受 $1 文件。'],
  [/is empty/i, '文件是空的。'],
  [/the photo is too large: (\d+) KiB/i, '照片文件太大（$1 KB），最大 200 KB。'],
  [/the photo is too small/i, '照片文件太小，至少 1 KB。'],
  [/the photo is (\d+)×(\d+) px/i, '照片尺寸为 $1×$2 像素，须为 295×413 像素（宽×高）。'],
  [/the photo is not a JPEG/i, '照片须为 JPEG 格式。'],
  [/the photo background is not white/i, '照片背景须为白色。'],
  [/the photo file is damaged/i, '照片文件已损坏，请重新导出后上传。'],
  [/must not be in the future|in the future/i, '日期不能晚于今天。'],
  [/missing data for required field|required/i, '此项必须填写。'],
  [/not a valid date/i, '请填写有效日期（年-月-日）。'],
  [/not a valid email/i, '请填写有效的电子邮箱地址。'],
]

/** A message from the API in Chinese (null when it is not one we know). */
export function knownMessage(english) {
  if (!english) return null
  const text = String(english)
  if (/[\u4e00-\u9fff]/.test(text) && !/[a-z]{4,}/i.test(text.replace(/\([^)]*\)/g, ''))) {
    return text // already Chinese
  }
  for (const [pattern, zh] of KNOWN) {
    const m = pattern.exec(text)
    if (m) return zh.replace(/\$(\d)/g, (_, i) => m[Number(i)] ?? '')
  }
  return null
}

/** The Chinese message for one field's complaint. */
export function fieldMessage(field, english) {
  const known = knownMessage(english)
  if (known) return known
  const label = FIELD_LABELS[field]
  return label ? `${label}填写有误，请检查。` : '此项填写有误，请检查。'
}

/**
 * The gateway's error body (``{"error": {code, message, reason, fields}}``) and status in
 * Chinese: ``{code, reason, message, fields}`` with ``fields`` {name: Chinese message}.
 */
export function chineseError(status, body) {
  const e = (body && typeof body === 'object' && body.error) || {}
  const code = e.code || (status >= 500 ? 'internal' : status === 0 ? 'network' : 'refused')
  const fields = {}
  const details = {}
  for (const [name, msg] of Object.entries(e.fields || {})) {
    if (DETAIL_FIELDS.has(name) || name === '_body' || name === '_schema') {
      details[name] = msg
      continue
    }
    // nested names ("education.0.school") are shown at their top field
    fields[name] = fieldMessage(name.split('.').pop().replace(/^\d+$/, name.split('.')[0]), msg)
  }
  const message = REASON_MESSAGES[e.reason] || knownMessage(e.message) || windowMessage(details) ||
    CODE_MESSAGES[code] || CODE_MESSAGES.refused
  return { code, reason: e.reason || null, message, fields, details, english: e.message || '' }
}

/** A window refusal ({window, opens, closes}) in words, with its times in Beijing time. */
export function windowMessage(details) {
  const name = WINDOW_NAMES[details?.window]
  if (!name) return null
  const span = details.opens && details.closes
    ? `（${shanghaiTime(details.opens)} 至 ${shanghaiTime(details.closes)}，北京时间）` : ''
  return `此项业务只能在「${name}」时段${span}内办理，现在不在该时段内。`
}
