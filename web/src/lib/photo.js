// The photo rule (报名照片), as the account service checks it (services/account/photo.py):
// a JPEG, 295×413 pixels, 1–200 KiB, on a white background (a strip along the top and down
// both sides of the top third is bright and mostly near-white). The browser can tell all
// of it before the upload; the server checks again.

export const PHOTO = {
  width: 295, height: 413, minBytes: 1024, maxBytes: 200 * 1024,
  strip: 6, minMean: 235, nearWhite: 220, minNearWhiteShare: 0.9,
}

/** Whether the first bytes are a JPEG's (FF D8 FF). */
export function isJpeg(bytes) {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff
}

/**
 * The background verdict from RGBA pixels (`data`: Uint8ClampedArray of width×height×4),
 * over the same strips the server reads.
 */
export function backgroundIsWhite(data, width, height, rule = PHOTO) {
  const s = rule.strip, third = Math.floor(height / 3)
  const boxes = [[0, 0, width, s], [0, s, s, third], [width - s, s, width, third]]
  const sums = [0, 0, 0]
  let n = 0, white = 0
  for (const [x0, y0, x1, y1] of boxes) {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const i = (y * width + x) * 4
        const r = data[i], g = data[i + 1], b = data[i + 2]
        sums[0] += r; sums[1] += g; sums[2] += b
        n++
        if (Math.min(r, g, b) >= rule.nearWhite) white++
      }
    }
  }
  if (!n) return false
  return Math.min(...sums) / n >= rule.minMean && white >= rule.minNearWhiteShare * n
}

/**
 * What is wrong with a photo, in Chinese (empty: nothing the browser can see).
 * facts: {size, jpeg, width?, height?, whiteBackground?} (undefined: not known).
 */
export function photoProblems(facts, rule = PHOTO) {
  const out = []
  if (!facts.jpeg) out.push('照片须为 JPEG 格式（.jpg）。')
  if (facts.size > rule.maxBytes) {
    out.push(`照片文件太大：${Math.ceil(facts.size / 1024)} KB，最大 ${rule.maxBytes / 1024} KB。`)
  } else if (facts.size < rule.minBytes) {
    out.push(`照片文件太小：${facts.size} 字节，至少 ${rule.minBytes / 1024} KB。`)
  }
  if (facts.width !== undefined && (facts.width !== rule.width || facts.height !== rule.height)) {
    out.push(`照片尺寸为 ${facts.width}×${facts.height} 像素，须为 ${rule.width}×${rule.height} 像素（宽×高）。`)
  }
  if (facts.whiteBackground === false) out.push('照片背景须为白色（头像上方和两侧应为纯白）。')
  return out
}
