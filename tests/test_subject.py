"""A report's subject (qabot.subject): title, lead, the names it uses most, short forms."""

from qabot.subject import document_subject, name_phrases, short_forms

TITLE = "Đảng ủy Ban Quản lý các Khu Chế xuất và Công nghiệp Thành phố sơ kết 9 tháng"
BODY = [
    "Ngày 12/10, Đảng ủy Ban Quản lý các Khu Chế xuất và Công nghiệp Thành phố (Đảng ủy Ban "
    "Quản lý) tổ chức hội nghị sơ kết. Đồng chí Võ Văn An, Phó Bí thư Thường trực Đảng ủy "
    "Ban Quản lý chủ trì hội nghị. Hội nghị có nhiều đại biểu tham dự và đóng góp ý kiến.",
    "Trong 9 tháng, Đảng ủy Ban Quản lý đã lãnh đạo Công đoàn Khu chế xuất hoàn thành nhiệm "
    "vụ; Công đoàn Khu chế xuất tổ chức nhiều hoạt động cho người lao động.",
    "Đảng bộ có 15 chi bộ trực thuộc.",
]


def test_short_form_defined_in_parentheses():
    assert short_forms(BODY[0]) == [
        (
            "Đảng ủy Ban Quản lý",
            "Đảng ủy Ban Quản lý các Khu Chế xuất và Công nghiệp Thành phố",
        )
    ]
    # Not a short form: lower case, digits, or no name before it that it abbreviates.
    assert short_forms("Hội nghị (trực thuộc Thành ủy) có 52 chi bộ (năm 2010).") == []


def test_names_are_capitalised_runs_with_their_lower_case_syllables():
    text = "Đồng chí Võ Văn An chủ trì. Công đoàn Khu chế xuất tổ chức hội thao."
    names = [text[s:e] for s, e, _ in name_phrases(text)]
    assert "Đồng chí Võ Văn An" in names
    assert "Công đoàn Khu" in names  # the lower-case tail is decided by the counts


def test_subject_of_a_report():
    subject = document_subject(TITLE, BODY)
    assert subject.title == TITLE
    assert subject.lead.startswith("Ngày 12/10, Đảng ủy Ban Quản lý các Khu Chế xuất")
    assert len(subject.lead) <= 400
    assert "Đảng ủy Ban Quản lý" in subject.names
    assert "Công đoàn Khu chế xuất" in subject.names  # its tail, shared by every mention
    assert subject.short_forms[0][0] == "Đảng ủy Ban Quản lý"
    text = subject.text
    assert TITLE in text and "Đảng ủy Ban Quản lý = Đảng ủy Ban Quản lý các Khu" in text


def test_subject_of_an_empty_document():
    subject = document_subject("Báo cáo", [])
    assert subject.lead == "" and subject.names == () and subject.short_forms == ()
    assert subject.text == "Báo cáo"
