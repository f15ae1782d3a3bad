"""Sample document data for the document and signing tests."""

from __future__ import annotations

import datetime as dt

from cloud.documents import CheckedItem, InspectionRecord, Officer, Party, RectificationOrder, ViolationLine

CST = dt.timezone(dt.timedelta(hours=8))

PARTY = Party(
    name="苏州市某某大药房有限公司",
    uscc="91320500MA1XXXXXX1",
    address="苏州市姑苏区人民路 100 号",
    legal_representative="张三",
    phone="13800001234",
    licence_no="苏DA5120001",
)
OFFICERS = [Officer(name="李四", cert_no="32050001"), Officer(name="王五", cert_no="32050002")]


def inspection_record(**overrides: object) -> InspectionRecord:
    data: dict[str, object] = {
        "doc_no": "姑苏市监检〔2026〕18号",
        "agency": "苏州市姑苏区市场监督管理局",
        "party": PARTY,
        "place": "苏州市姑苏区人民路 100 号 冷藏药品库",
        "started_at": dt.datetime(2026, 3, 2, 9, 30, tzinfo=CST),
        "ended_at": dt.datetime(2026, 3, 2, 10, 45, tzinfo=CST),
        "officers": OFFICERS,
        "recorder": "王五",
        "task_ref": "T-2026-0042",
        "items": [
            CheckedItem(code="DR-LIC-01", title="药品经营许可证有效", result="符合"),
            CheckedItem(code="DR-STO-01", title="药品储存温湿度符合要求", result="不符合", note="冷藏柜 11.2 ℃"),
        ],
        "findings": "冷藏柜温度显示 11.2 ℃，超出 2–8 ℃ 要求；监测系统于 3 月 1 日 22:10 起报警。",
        "party_opinion": "",
        "evidence": ["现场照片 3 张", "温度记录导出 1 份"],
    }
    data.update(overrides)
    return InspectionRecord.model_validate(data)


def rectification_order(**overrides: object) -> RectificationOrder:
    data: dict[str, object] = {
        "doc_no": "姑苏市监责改〔2026〕7号",
        "agency": "苏州市姑苏区市场监督管理局",
        "party": PARTY,
        "inspected_on": dt.date(2026, 3, 2),
        "violations": [
            ViolationLine(
                fact="冷藏药品储存温度超出 2–8 ℃ 要求",
                violated=["《药品管理法》第五十三条", "《药品经营质量管理规范》第八十三条"],
            )
        ],
        "legal_basis": ["《药品管理法》第一百二十六条"],
        "deadline": dt.date(2026, 3, 17),
        "requirements": ["立即将受影响药品隔离存放并评估质量", "维修或更换冷藏设备，校准温湿度监测探头"],
        "issued_on": dt.date(2026, 3, 2),
        "contact": "李四 0512-12345678",
        "reconsideration_body": "苏州市姑苏区人民政府",
        "court": "苏州市姑苏区人民法院",
    }
    data.update(overrides)
    return RectificationOrder.model_validate(data)
