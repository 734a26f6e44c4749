local c = config.new()
config.app(c, "source" basic.Source)
return c
