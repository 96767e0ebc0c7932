from django.contrib import admin

from .models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "private", "created"]
    search_fields = ["name"]
    readonly_fields = ["last_seq"]  # moved only by post_message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["room", "seq", "name", "text", "created"]  # seq: the message id clients see
    list_filter = ["room"]
    search_fields = ["text", "name"]
    readonly_fields = ["seq"]

    def has_add_permission(self, request):
        return False  # post_message numbers and delivers messages: post on the page or with chat_say
