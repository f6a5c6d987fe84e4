from pixelwand.cli import main

raise SystemExit(main())
