"""Headless Debian Chromium driven by Selenium, for page tests (no browser download)."""

import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from realtime.testing import require_binary

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,900"]


def start_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = require_binary("chromium")
    for flag in FLAGS + [f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(require_binary("chromedriver")), options=options)


def by_testid(testid):
    return (By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def wait_for(driver, condition, timeout=10, message=""):
    return WebDriverWait(driver, timeout).until(condition, message)


def text_of(driver, testid):
    return driver.find_element(*by_testid(testid)).text
