module github.com/libsmtpc/libsmtpc/bindings/go

go 1.19
