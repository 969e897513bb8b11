# The merchant and operations web pages.

web-language = Language
