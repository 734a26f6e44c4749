local x = nil
print(x.field)
