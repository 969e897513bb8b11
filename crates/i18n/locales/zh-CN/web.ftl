# 商户与运营网页。

web-language = 语言
