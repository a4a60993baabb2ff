def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        help="also run the checks that train your model for 30 epochs (about a minute)",
    )
