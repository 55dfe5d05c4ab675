import { describe, expect, it } from 'vitest'
import { checkCharacter, explainIdNumber, idFacts } from '../src/lib/idcard.js'

const TODAY = new Date(Date.UTC(2026, 3, 7))

describe('GB 11643 check character', () => {
  it('computes the check characters the account service accepts', () => {
    // the test candidates of tests/integration/test_gateway_flow.py
    expect(checkCharacter('31010419880512345')).toBe('5')
    expect(checkCharacter('31011519920315002')).toBe('X')
    expect(checkCharacter('11010519491231002')).toBe('X') // GB 11643's own example
  })

  it('accepts a right number, lower-case x and full-width digits', () => {
    expect(explainIdNumber('310104198805123455', TODAY)).toBeNull()
    expect(explainIdNumber('31011519920315002x', TODAY)).toBeNull()
    expect(explainIdNumber('３１０１０４１９８８０５１２３４５５', TODAY)).toBeNull()
  })

  it('explains a wrong check digit in words, naming the right one', () => {
    const said = explainIdNumber('310104198805123456', TODAY)
    expect(said).toContain('校验码')
    expect(said).toContain('应为 5')
    expect(said).toContain('您填写的是 6')
  })

  it('explains length, characters, the birth date and the area code', () => {
    expect(explainIdNumber('3101041988051234', TODAY)).toContain('18 位，您填写了 16 位')
    expect(explainIdNumber('31010419880512345A', TODAY)).toContain('数字或字母 X')
    expect(explainIdNumber('310104198802303455', TODAY)).toContain('19880230 不是有效的日期')
    expect(explainIdNumber('310104202705123455', TODAY)).toContain('晚于今天')
    expect(explainIdNumber('010104198805123455', TODAY)).toContain('地区代码')
    expect(explainIdNumber('', TODAY)).toBe('请填写身份证号码。')
  })

  it('reads the birth date and gender', () => {
    expect(idFacts('310104198805123455')).toEqual({ birthDate: '1988-05-12', gender: 'M' })
    expect(idFacts('31011519920315002X')).toEqual({ birthDate: '1992-03-15', gender: 'F' })
  })
})
