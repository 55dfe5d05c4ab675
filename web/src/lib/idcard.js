// GB 11643-1999 居民身份证号码: 17 digits (6 area + 8 birth date + 3 sequence) and a check
// character computed by ISO 7064 MOD 11-2. The browser explains in words what is wrong
// before the server refuses it (the account service checks the same rule).

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
const CHECK = '10X98765432'

/** The check character (0-9 or X) for the first 17 digits. */
export function checkCharacter(first17) {
  let sum = 0
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i]
  return CHECK[sum % 11]
}

function validDate(y, m, d) {
  const date = new Date(Date.UTC(y, m - 1, d))
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d
}

/**
 * Explain what is wrong with a resident ID number, in Chinese; null when it is right.
 * `today` (a Date) bounds the birth date.
 */
export function explainIdNumber(raw, today = new Date()) {
  // NFKC folds full-width digits from Chinese input methods, as the server does
  const value = String(raw ?? '').normalize('NFKC').trim().toUpperCase()
  if (!value) return '请填写身份证号码。'
  if (value.length !== 18) {
    return `居民身份证号码应为 18 位，您填写了 ${value.length} 位。`
  }
  if (!/^\d{17}[\dX]$/.test(value)) {
    return '居民身份证号码前 17 位应为数字，最后一位为数字或字母 X。'
  }
  if (value[0] === '0') return '号码前 6 位是地区代码，不能以 0 开头。'
  const y = Number(value.slice(6, 10)), m = Number(value.slice(10, 12)), d = Number(value.slice(12, 14))
  if (!validDate(y, m, d) || y < 1900) {
    return `第 7–14 位是出生日期，${value.slice(6, 14)} 不是有效的日期。`
  }
  if (new Date(Date.UTC(y, m - 1, d)) > today) return '第 7–14 位的出生日期晚于今天。'
  const expected = checkCharacter(value)
  if (value[17] !== expected) {
    return `最后一位是校验码（按 GB 11643 由前 17 位计算），应为 ${expected}，` +
      `您填写的是 ${value[17]}。请核对号码是否有输错的数字。`
  }
  return null
}

/** The birth date (YYYY-MM-DD) and gender (M/F) a valid resident ID number carries. */
export function idFacts(value) {
  const v = String(value).normalize('NFKC').trim().toUpperCase()
  return {
    birthDate: `${v.slice(6, 10)}-${v.slice(10, 12)}-${v.slice(12, 14)}`,
    gender: Number(v[16]) % 2 ? 'M' : 'F',
  }
}
