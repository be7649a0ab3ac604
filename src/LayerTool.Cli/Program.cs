return LayerTool.Cli.LayerToolApp.Run(args);
