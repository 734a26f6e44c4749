local c = config.new()
