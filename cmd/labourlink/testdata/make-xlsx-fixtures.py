# Makes the .fods spreadsheets the .xlsx fixtures are converted from (see README.md).
import re

src = open("roster.fods", encoding="utf-8").read()
head, rest = src.split("<office:body>", 1)
table = re.search(r'<table:table table:name="花名册">.*?</table:table>', rest, re.S).group(0)

def doc(*tables):
    return head + "<office:body><office:spreadsheet>" + "".join(tables) + "</office:spreadsheet></office:body></office:document>\n"

def s(v): return '<table:table-cell office:value-type="string"><text:p>%s</text:p></table:table-cell>' % v
def f(v): return '<table:table-cell office:value-type="float" office:value="%s"><text:p>%s</text:p></table:table-cell>' % (v, v)
def d(v): return '<table:table-cell office:value-type="date" office:date-value="%s" table:style-name="ce1"><text:p>%s</text:p></table:table-cell>' % (v, v)
def row(*cells): return "<table:table-row>" + "".join(cells) + "</table:table-row>"

# Row 3 (李建国): identity number and phone typed as numbers, as Excel does to a pasted column.
numeric = table.replace(s("520103198803040130"), f("520103198803040130")).replace(s("13900139001"), f("13900139001"))
open("roster-numeric-id.fods", "w", encoding="utf-8").write(doc(numeric))

# A notes sheet first, the roster second, with an empty row after row 3 (so the bad rows are 5 and 6).
notes = '<table:table table:name="说明">' + row(s("填表说明")) + row(s("身份证号请设为文本格式")) + "</table:table>"
rows = table.split("</table:table-row>")
gapped = "</table:table-row>".join(rows[:3]) + "</table:table-row>" + row() + "</table:table-row>".join(rows[3:])
open("roster-two-sheets.fods", "w", encoding="utf-8").write(doc(notes, gapped))

hdr = row(*map(s, "用人单位 统一社会信用代码 工作地点 职业 招聘人数 最低月薪 最高月薪 开始日期 截止日期 最高年龄 包住 包吃 联系方式".split()))
code = "91440300MA5FN1234K"
vac = ('<table:table table:name="岗位">' + hdr +
    row(s("深圳南山电子厂"), s(code), s("440305"), s("8212"), f(30), f(4500), f(6000), d("2027-03-01"), d("2027-12-31"), f(45), s("是"), s("是"), s("0755-26000000")) +
    row(s("东莞物流"), s(code), s("441900"), s("9333"), f(12), f(5000), f(7000), d("2027-03-01"), d("2027-12-31"), s(""), s("否"), s("是"), s("")) +
    row(s("坏行"), s(code), s("520102"), s("8212"), f(0), f(4500), f(6000), d("2027-03-01"), d("2027-12-31"), s(""), s(""), s(""), s("")) +
    "</table:table>")
open("vacancies.fods", "w", encoding="utf-8").write(doc(vac))
