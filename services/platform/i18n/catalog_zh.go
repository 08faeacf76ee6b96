package i18n

// zhHans is the Simplified Chinese catalog: English format → Chinese format, with the same
// verbs (use %[n]s to reorder). TestCatalogCoversCode fails when code uses a format missing here.
var zhHans = map[string]string{
	"must not be empty": "不能为空",
	"row %d: %s":        "第 %d 行：%s",
}
