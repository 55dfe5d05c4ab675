"""Exam-day rules kept as data (考场规则 and the check-in margin), not in code paths.

The rules are printed on every admission ticket; the check-in margin says how early staff
may check a candidate in for a sitting. Change them here, not in the domain or the PDF.
"""

from datetime import timedelta

#: 考场规则: printed on the ticket, in this order
EXAM_RULES: tuple[str, ...] = (
    "考生凭准考证和有效身份证件（与报名时一致）参加考试，二者缺一不得入场。",
    "考生须在开考前到达考场，接受身份核验后按座位号入座，并将准考证、身份证件放在桌面左上角。",
    "开考30分钟后不得入场，考试结束前不得提前交卷离场。",
    "除规定的文具外，不得携带任何书籍、资料、通讯工具、电子存储设备等物品进入考场座位。",
    "考试期间保持安静，不得交头接耳、偷看他人答卷或以任何方式作弊。",
    "违纪违规行为按《专业技术人员资格考试违纪违规行为处理规定》处理，并记入诚信档案。",
)

#: check-in for a sitting opens this long before the sitting starts and stays open until
#: the sitting ends (inclusive to the second, like every window)
CHECK_IN_OPENS_BEFORE = timedelta(minutes=60)
